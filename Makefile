# reconcile-lab: `make help` lists the targets.
#
# Everything this Makefile installs or builds lives outside the repository, under $(CACHE):
# the Python environment (keyed by the dependency list), the control-plane binaries (keyed by
# version) and the state of running clusters. A second run reuses all of it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE ?= $(or $(RECONCILE_LAB_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/reconcile-lab)
PYTHON ?= python3
PROVIDER ?= auto
NODES ?= both
IMG ?= reconcile-lab/operator:dev
PYTEST_ARGS ?=
OUT ?= out/compare
COMPARE_ARGS ?=
ARTICLE_ARGS ?=
WATCH_ARGS ?=
WEB_ARGS ?=
REMOVE_PACKAGES ?=
PROMETHEUS_ADDR ?= 127.0.0.1:9090
PNG ?= out/reconciliation.png
BENCH_DIR ?= bench
BENCH_ARGS ?=
TWIN_ARGS ?=
DRIFT_ARGS ?= --rounds 50 --apps 100
RELIABILITY_DATA ?= docs/data/reliability.json
RELIABILITY_DOC ?= docs/reliability.md
DRILL_RECORD ?= out/drills.jsonl
DRILLS ?= tests/integration/test_chaos.py \
  tests/integration/test_reliability.py::test_of_two_replicas_only_one_acts_and_the_other_takes_over \
  tests/integration/test_reliability.py::test_a_replica_of_the_same_priority_as_a_live_one_refuses_to_start \
  tests/integration/test_reliability.py::test_what_was_deleted_while_the_operator_was_down_leaves_nothing_behind \
  tests/integration/test_permissions.py \
  tests/integration/test_backlog.py \
  tests/integration/test_soak.py \
  tests/integration/test_partition.py \
  tests/integration/test_stalled_watch.py \
  tests/integration/test_expired_watch.py \
  tests/integration/test_throttled.py \
  tests/integration/test_operator.py::test_restarting_the_operator_mid_work_loses_and_duplicates_nothing \
  tests/integration/test_operator.py::test_drift_is_repaired_within_two_seconds
OPERATOR_ARGS ?=

export RECONCILE_LAB_CACHE := $(CACHE)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

VENV := $(CACHE)/venv-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PY := $(VENV)/bin/python
RL := $(PY) -m reconcile_lab
KUBECTL := $(RL) cluster kubectl --

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Quick start

.PHONY: demo
demo: deps ## Bring everything up and show both engines making one WebApp true.
	$(RL) demo --provider $(PROVIDER)

.PHONY: compare
compare: deps engine image control-plane ## Measure both engines side by side (QUICK=1: a short subset); writes OUT=out/compare.
	$(RL) compare --out $(OUT) $(if $(QUICK),--quick,) $(COMPARE_ARGS)

.PHONY: watch
watch: deps ## Live view of both engines side by side (Ctrl-C to quit; WATCH_ARGS=--help).
	$(RL) watch $(WATCH_ARGS)

.PHONY: web
web: deps ## The live page on http://127.0.0.1:8090/: both engines, events, the exercise's faults as buttons (WEB_ARGS=--help; --replay FILE).
	$(RL) web $(WEB_ARGS)

.PHONY: test
test: deps engine image control-plane ## Run every test: unit, then integration on a real cluster and Docker.
	$(RL) manifests --check
	$(PY) -m pytest -m "not chaos" $(PYTEST_ARGS)

.PHONY: test-chaos
test-chaos: deps engine image control-plane ## Fault drills: restart the apiserver, etcd, dockerd; kill the operator mid-work; cut or stall its connections.
	$(PY) -m pytest -m chaos $(PYTEST_ARGS)

##@ Development

.PHONY: manifests
manifests: deps ## Generate crds/ from the spec model (operator/reconcile_lab/spec.py).
	$(RL) manifests

.PHONY: dashboards
dashboards: deps ## Generate the Grafana dashboards and in-cluster ConfigMaps (observe/dashboards.py, grafana.py).
	$(RL) observe dashboards

.PHONY: fmt
fmt: deps ## Auto-fix what ruff can (import order, modern syntax); the layout is by hand.
	$(VENV)/bin/ruff check --fix operator tests bench

.PHONY: lint
lint: deps ## ruff, strict mypy and the import-linter layering contracts.
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/mypy
	cd operator && $(VENV)/bin/lint-imports --config ../pyproject.toml

.PHONY: test-unit
test-unit: deps ## Only the fast, pure unit tests.
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: deps engine image control-plane ## Only the tests against a real cluster and Docker.
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

##@ Benchmarks

.PHONY: bench
bench: deps control-plane image ## Measure all bench/RESULTS.md publishes (convergence and peers at 100/500/1000 WebApps x3, drift repair, Docker twin); regenerate it in BENCH_DIR=bench.
	$(PY) bench/convergence.py --write $(BENCH_DIR) $(BENCH_ARGS)
	$(PY) bench/drift_repair.py --write $(BENCH_DIR) $(DRIFT_ARGS)
	$(PY) bench/docker_twin.py --write $(BENCH_DIR) $(TWIN_ARGS)

.PHONY: bench-drift
bench-drift: deps control-plane ## Measure drift-repair and spec-change latency only; save BENCH_DIR/data/drift_repair.json, regenerate RESULTS.md.
	$(PY) bench/drift_repair.py --write $(BENCH_DIR) $(DRIFT_ARGS)

.PHONY: bench-report
bench-report: deps ## Regenerate BENCH_DIR/RESULTS.md and its plot from BENCH_DIR/data/ (measures nothing).
	$(PY) bench/report.py results --dir $(BENCH_DIR)

.PHONY: reliability
reliability: deps engine image control-plane ## Run the fault drills (DRILLS), save their figures in RELIABILITY_DATA, regenerate the table in RELIABILITY_DOC.
	@mkdir -p $(dir $(DRILL_RECORD)) && rm -f $(DRILL_RECORD)
	RECONCILE_LAB_DRILL_RECORD=$(abspath $(DRILL_RECORD)) $(PY) -m pytest $(DRILLS) $(PYTEST_ARGS); \
	  rc=$$?; $(PY) bench/report.py reliability --records $(DRILL_RECORD) --data $(RELIABILITY_DATA) \
	  --doc $(RELIABILITY_DOC) --command "$(strip $(DRILLS) $(PYTEST_ARGS))" && exit $$rc

.PHONY: article
article: deps engine image control-plane ## Measure the article's claims (one compare run; COMPARE_ARGS="--kubeconfig F" on a running cluster; ARTICLE_ARGS: see bench/article.py --help) and rewrite their table in docs/mapping.md and the workshop guide.
	$(PY) bench/article.py --write $(if $(COMPARE_ARGS),--compare-args "$(COMPARE_ARGS)",) $(ARTICLE_ARGS)

.PHONY: article-report
article-report: deps ## Rewrite the article's claims in docs/mapping.md and the workshop guide from docs/data/article.json (measures nothing; ARTICLE_ARGS: see bench/article.py --help).
	$(PY) bench/article.py --report $(ARTICLE_ARGS)

.PHONY: reliability-report
reliability-report: deps ## Regenerate the table in RELIABILITY_DOC=docs/reliability.md from RELIABILITY_DATA (measures nothing).
	$(PY) bench/report.py reliability --data $(RELIABILITY_DATA) --doc $(RELIABILITY_DOC)

##@ Build

.PHONY: deps
deps: $(VENV)/.installed ## Create the Python environment (cached by dependency list).
	@# The environment is shared by every checkout: point it at this one when needed.
	@$(PY) -c 'import reconcile_lab, sys; sys.exit(not reconcile_lab.__file__.startswith("$(CURDIR)/"))' \
	  2>/dev/null || $(VENV)/bin/pip install -q --no-deps -e .

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import venv' 2>/dev/null || { echo "python3 has no venv module: apt-get install python3-venv" >&2; exit 1; }
	@echo "reconcile-lab: creating the Python environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

.PHONY: control-plane
control-plane: deps ## Build etcd, the Kubernetes components, kubectl and kwok from source (cached by version).
	$(RL) cluster build

.PHONY: engine
engine: deps ## Make sure a Docker engine answers (installs docker.io and starts dockerd if needed).
	$(RL) engine up

.PHONY: image
image: engine ## Build the demo image reconcile-lab/hello:v1 and :v2 (FROM scratch, offline).
	$(RL) image build

##@ Cluster

.PHONY: cluster
cluster: deps ## Start the local cluster (PROVIDER=auto|kwok|kind, NODES=both|real|kwok) and install the CRD.
	$(RL) cluster up --provider $(PROVIDER) --nodes $(NODES)
	$(MAKE) --no-print-directory install

.PHONY: down
down: deps ## Stop the operator and the cluster; remove their processes and data (REMOVE_PACKAGES=1: and the Debian packages the kit installed, Prometheus and Chromium).
	-$(RL) operator stop
	$(RL) cluster down --provider $(PROVIDER)$(if $(REMOVE_PACKAGES), --remove-packages,)

.PHONY: status
status: deps ## Say what runs where.
	$(RL) cluster status

##@ Observability

.PHONY: grafana
grafana: deps ## Start Prometheus and Grafana (docker compose, images must be present) and print the URL.
	$(RL) observe up

.PHONY: grafana-down
grafana-down: deps ## Stop Prometheus and Grafana and remove their data.
	$(RL) observe down

.PHONY: prometheus
prometheus: deps ## Run Debian's Prometheus on PROMETHEUS_ADDR=127.0.0.1:9090 scraping both engines (no image needed).
	$(RL) observe prometheus --listen $(PROMETHEUS_ADDR)

.PHONY: render
render: deps ## Plot the Reconciliation dashboard from Prometheus at PROMETHEUS_ADDR to PNG=out/reconciliation.png.
	$(RL) observe render --prometheus http://$(PROMETHEUS_ADDR) -o $(PNG)

##@ Deployment

.PHONY: install
install: deps ## Install the CRD into the cluster.
	$(KUBECTL) apply --server-side --field-manager=reconcile-lab -f crds/
	$(KUBECTL) wait --for condition=established --timeout=60s -f crds/

.PHONY: uninstall
uninstall: deps ## Remove the CRD (and with it every WebApp).
	$(KUBECTL) delete --ignore-not-found -f crds/

.PHONY: run
run: deps install ## Run the operator locally, in the foreground, against the cluster (OPERATOR_ARGS=--help).
	$(RL) operator run $(OPERATOR_ARGS)

.PHONY: docker-build
docker-build: engine ## Build the operator image IMG offline: Debian base by mmdebstrap, wheels by pip, no registry.
	$(RL) image build --operator --tag $(IMG)

.PHONY: deploy
deploy: install ## Run the operator IMG in the cluster (loads it into the nodes; never pulled): RBAC, Deployment, metrics Service.
	$(RL) image load $(IMG)
	$(KUBECTL) apply -f deploy/rbac.yaml
	sed 's|image: reconcile-lab/operator:dev|image: $(IMG)|' deploy/operator.yaml | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: deps ## Remove the in-cluster operator and its RBAC.
	$(KUBECTL) delete --ignore-not-found -f deploy/operator.yaml
	$(KUBECTL) delete --ignore-not-found -f deploy/rbac.yaml
