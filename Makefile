# The README's two commands: `make run` and `make test`. Both set up first.
.PHONY: setup run test lint bench bench-bauer2025 bench-cuda figures screenshots

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

# Masks are estimated with the sample ensemble: remade when its members change.
SAMPLE_ENCODER := $(wildcard napari_movierecon/sample_data/encoder/member_*.safetensors)

screenshots: setup bench_out/coverage_mask.safetensors
	.venv/bin/python scripts/screenshots.py --out docs/figures --mask bench_out/coverage_mask.safetensors \
		$(if $(wildcard bench_out/probe_noise/probe.json),--probe bench_out/probe_noise)

# The reference's masks, estimated on training trials only (~2 min), and the RF-coverage
# mask (seconds).
bench_out/coverage_mask.safetensors: MASK_METHOD := --method coverage
bench_out/mask.safetensors bench_out/coverage_mask.safetensors: $(SAMPLE_ENCODER)
	$(MAKE) setup
	mkdir -p bench_out
	.venv/bin/movierecon mask --recording sample --encoder sample $(MASK_METHOD) --out $@ \
		--overwrite

# ~1.5-2 h on 2 cores (measured 2026-12-03: the masks ~2 min, the reconstruction benchmark
# ~4-5 min, napari ~6 min, DwiseNeuro's cost ~3-5 min, the batch benchmark ~3-4 min,
# bauer2025's speed-up ~5 min, the probes with the oracle ~11 min (noise, 3 seeds: ~8 min;
# gratings ~3 min), the stopping rule on validation and test clips ~3 min; distilling one
# student from the teacher's member 0 ~42 min alone (3,000 steps, 2026-12-05), then its
# evaluation and 10 `fast` runs ~1.5 min).
bench: setup bench_out/mask.safetensors
	.venv/bin/python -m benchmarks.insilico_bench
	.venv/bin/python -m benchmarks.encoder_groups --encoders sample=sample
	.venv/bin/python -m benchmarks.encoder_bench --encoder napari_movierecon/sample_data/encoder/member_0.safetensors
	.venv/bin/python -m benchmarks.bauer2025_speed_bench --iterations 20 --repeats 3 --mask bench_out/mask.safetensors
	.venv/bin/python -m benchmarks.reconstruct_bench --presets fast --encoders ensemble,oracle --clips 5 \
		--mask bench_out/mask.safetensors --fractions 0.125,0.25,0.5,1
	.venv/bin/python -m benchmarks.napari_bench --repeats 3
	.venv/bin/python -m benchmarks.dwiseneuro_bench --threads 2 --repeats 3
	.venv/bin/python -m benchmarks.batch_bench --runs 8 --layouts 1x2,2x1
	.venv/bin/python -m benchmarks.stopping_bench --presets fast --clips 2 --patience 10 \
		--out bench_out/stopping_fast --resume
	.venv/bin/python -m benchmarks.stopping_bench --presets fast --tier final_test_main --clips 5 \
		--fraction 0.1 --patience 10 --out bench_out/stopping_fast --resume
	.venv/bin/movierecon probe --encoder sample --recording sample --kind noise --oracle \
		--seeds 3 --out bench_out/probe_noise --overwrite --threads 2
	.venv/bin/movierecon probe --encoder sample --recording sample --kind gratings --oracle \
		--out bench_out/probe_gratings --overwrite --threads 2
	.venv/bin/python -m benchmarks.distill_bench --extra-movies 200 --init --learning-rate 0.003 \
		--epochs 20 --clips 5 --mask bench_out/mask.safetensors

# bauer2025 next to fast on the same 5 clips: ~8 min per bauer2025 clip on 2 cores with the
# present sample ensemble (488-503 s a clip on 2026-12-05; 788-811 s a clip before the faster
# temporal filters of 2026-12-04/05).
# The stopping rule with bauer2025 shortened to member 1 and 200 iterations (~1 min a run):
# 2 runs on a validation clip (~2 min), then its settings on the 5 test clips (10 runs, ~9 min).
# Finished runs are kept in bench_out/*/runs.jsonl; re-running resumes.
bench-bauer2025: setup bench_out/mask.safetensors
	.venv/bin/python -m benchmarks.reconstruct_bench --presets fast,bauer2025 --encoders ensemble \
		--clips 5 --mask bench_out/mask.safetensors --out bench_out/bauer2025 --resume
	.venv/bin/python -m benchmarks.stopping_bench --presets bauer2025 --iterations 200 \
		--members 1 --clips 1 --patience 30 --out bench_out/stopping_bauer --resume
	.venv/bin/python -m benchmarks.stopping_bench --presets bauer2025 --iterations 200 \
		--members 1 --tier final_test_main --clips 5 --fraction 0.1 --patience 30 \
		--out bench_out/stopping_bauer --resume

# The speed benchmarks on a CUDA GPU (benchmarks/cuda.sh; ~6 min on one H200). The
# project never needs a GPU; where the machine's own Python holds a CUDA build of torch,
# `make bench-cuda PYTHON=python3` runs the benchmarks with it instead of .venv's (the
# mask is still made with .venv's, on the CPU).
bench-cuda: bench_out/mask.safetensors
	PYTHON=$(or $(PYTHON),.venv/bin/python) bash benchmarks/cuda.sh
