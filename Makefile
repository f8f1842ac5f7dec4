# etlc: every target sets up what it needs. Python 3.11 (the pinned development set in
# constraints.txt; etlc itself runs on 3.10 and later), a JDK (17) and Maven must be present.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
# etlc's JVM module (jvm/etlc-jvm), versioned with etlc; the submit commands ship it from jars/.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
# Built for Scala 2.13 (Spark 4.x) and, with the spark-3.5 profile, Scala 2.12 (Spark 3.5).
JVM_JAR := jars/etlc-jvm-$(VERSION).jar
JVM_JAR_212 := jars/etlc-jvm_2.12-$(VERSION).jar
JVM_SRC := jvm/etlc-jvm/pom.xml $(shell find jvm/etlc-jvm/src schemas/jvm -type f) \
           schemas/pipeline.schema.json schemas/environment.schema.json etlc/codegen/scala_config.py

.PHONY: setup jars jvm demo test unit integration lint format compile clean services-up services-down bench compat tools services-and-tools

# etlc-jvm first: `etlc jars` copies it into jars/ beside the connector jars.
setup: $(STAMP) jvm jars

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -c constraints.txt
	rm -f $(VENV)/.installed-*
	touch $@

jars: $(STAMP) jvm
	$(BIN)/etlc jars --dest jars

# Built (and its Scala unit tests run: `package` runs them) whenever a source changes.
jvm: $(JVM_JAR) $(JVM_JAR_212)

$(JVM_JAR): $(JVM_SRC)
	mvn -q -B -f jvm/etlc-jvm/pom.xml -Detlc.python=$(PYTHON) package
	mkdir -p jars
	cp jvm/etlc-jvm/target/etlc-jvm-$(VERSION).jar $@

# After the 2.13 build: Maven's local repository is not safe for two runs at once.
$(JVM_JAR_212): $(JVM_SRC) $(JVM_JAR)
	mvn -q -B -f jvm/etlc-jvm/pom.xml -P spark-3.5 -Detlc.python=$(PYTHON) package
	mkdir -p jars
	cp jvm/etlc-jvm/target-2.12/etlc-jvm-$(VERSION).jar $@

demo: setup
	$(BIN)/etlc demo

compile: $(STAMP)
	$(BIN)/etlc compile pipelines/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# The drivers too: a connector argument renamed without recompiling fails here, not in
	# spark-submit.
	$(BIN)/mypy --strict generated/
	$(BIN)/lint-imports
	$(BIN)/etlc lint pipelines/

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: setup
	$(BIN)/pytest tests/unit -q

integration: setup services-up tools
	$(BIN)/pytest tests/integration -q

# The whole suite: linters, the local services, then the unit, integration and benchmark-smoke
# tests with the coverage gate (>= 85%; scripts/test.sh). What can overlap does: the venv
# beside etlc-jvm's build, the linters beside the services and tools, the unit tests beside
# the integration tests. Maven (jvm, jars, services-up) and apt-get (services-up, tools) never
# run twice at once: neither's local state is safe for that.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target $(STAMP) jvm
	$(MAKE) --no-print-directory jars
	$(MAKE) --no-print-directory -j2 --output-sync=target lint services-and-tools
	scripts/test.sh --durations=40

services-and-tools: services-up
	scripts/tools.sh

# Graphviz and headless Chromium, which the explain tests drive (apt-get when missing).
tools:
	scripts/tools.sh

# The benchmarks (bench/): a report under bench/results/ (latest.md, latest.json). Long: the
# simple batch is 10 million records and the stream runs 210 s at 50,000 events/s.
bench: setup services-up
	$(BIN)/python -m bench

clean:
	rm -rf .etlc data/demo out .pytest_cache .mypy_cache .ruff_cache .coverage jvm/etlc-jvm/target \
	  jvm/etlc-jvm/target-2.12

# Local PostgreSQL, MariaDB, Kafka (KRaft) and S3 (moto) on 127.0.0.1 for the integration tests;
# state, logs and passwords (0600) in .services/. `scripts/services.sh status|env` tells the rest.
services-up: $(STAMP)
	scripts/services.sh up

services-down:
	scripts/services.sh down

# etlc on another Python (the lowest pyspark 4.2 supports by default): the wheel in a fresh venv
# of COMPAT_PYTHON, its `etlc lint`/`etlc compile` of pipelines/ byte-identical to .venv's, and
# the compiler's unit tests there (scripts/compat.sh). Not part of `make test`: it installs from
# the package index.
COMPAT_PYTHON ?= python3.10

compat: $(STAMP) jvm
	scripts/compat.sh $(COMPAT_PYTHON)
