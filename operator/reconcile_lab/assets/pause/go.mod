module reconcile-lab.dev/pause

go 1.22
