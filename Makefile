# The README's two commands: `make run` and `make test`. Both set up first.
.PHONY: setup run test lint bench figures screenshots

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/movierecon view

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

figures: setup
	.venv/bin/movierecon figures --out docs/figures

screenshots: setup
	mkdir -p bench_out
	test -f bench_out/coverage_mask.safetensors || .venv/bin/movierecon mask --recording sample \
		--encoder sample --method coverage --out bench_out/coverage_mask.safetensors
	.venv/bin/python scripts/screenshots.py --out docs/figures --mask bench_out/coverage_mask.safetensors

bench: setup
	.venv/bin/python -m benchmarks.insilico_bench
	.venv/bin/python -m benchmarks.encoder_bench --encoder napari_movierecon/sample_data/encoder/member_0.safetensors
	.venv/bin/python -m benchmarks.reconstruct_bench --presets fast --clips 5 --fractions 0.125,0.25,0.5,1
	.venv/bin/python -m benchmarks.napari_bench --repeats 3
