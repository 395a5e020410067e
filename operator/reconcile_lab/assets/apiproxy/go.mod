module reconcile-lab.dev/apiproxy

go 1.22
