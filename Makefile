# Quotewise: `make demo` and `make test` work on a fresh machine with Python 3.11, git and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the benchmark's own environment: hftbacktest pins numpy below 2.3, which must not reach .venv
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test lint install bench bench-model bench-data clean
BENCH_DATA := runs/bench

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,ml]'
	touch $(STAMP)

install: $(STAMP)

$(BENCH_STAMP): pyproject.toml
	test -d $(BENCH_VENV) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/mm backtest --data synthetic --strategy skew --seed 7 --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -n 2  # two workers (pytest-xdist): most tests wait on engines and venues

# Quotewise vs hftbacktest, same strategy and events (bench/compare_hftbacktest.py), in $(BENCH_VENV) so
# that .venv keeps its numpy; writes data under runs/bench
bench: bench-data
	$(BENCH_BIN)/python bench/compare_hftbacktest.py $(BENCH_DATA)/synth_10m.npz --runs 5 --warmup $(BENCH_DATA)/small.npz
	$(BENCH_BIN)/python bench/compare_hftbacktest.py $(BENCH_DATA)/btcusdt_usdm.npz --runs 5 --warmup $(BENCH_DATA)/small.npz
	$(BENCH_BIN)/python bench/compare_hftbacktest.py $(BENCH_DATA)/btcusdt_spot.npz --runs 5 --warmup $(BENCH_DATA)/small.npz

# what a model's skew costs the compiled backtest (bench/model_skew.py), on the same data files
bench-model: bench-data
	$(BENCH_BIN)/python bench/model_skew.py

bench-data: $(BENCH_STAMP)
	mkdir -p $(BENCH_DATA)
	test -f $(BENCH_DATA)/small.npz || $(BENCH_BIN)/python bench/make_bench_data.py synthetic 200000 $(BENCH_DATA)/small.npz
	test -f $(BENCH_DATA)/synth_10m.npz || $(BENCH_BIN)/python bench/make_bench_data.py synthetic 10000000 $(BENCH_DATA)/synth_10m.npz
	test -f $(BENCH_DATA)/btcusdt_usdm.json || $(BENCH_BIN)/python bench/make_bench_data.py binance ../shared/data/binance/usdm/btcusdt_20240808.gz $(BENCH_DATA)/btcusdt_usdm.npz
	test -f $(BENCH_DATA)/btcusdt_spot.json || $(BENCH_BIN)/python bench/make_bench_data.py binance ../shared/data/binance/spot/btcusdt_20240808.gz $(BENCH_DATA)/btcusdt_spot.npz

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf runs .pytest_cache
