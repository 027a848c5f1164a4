#!/usr/bin/env bash
# The GPU measurements the open issues ask for, for a session that is lent an NVIDIA machine.
#
# Here (network): download the wheels the machine lacks (it has torch, not diffusers) into .gpu/,
# which git ignores and `run` carries:
#     tools/gpu_checks.sh wheels
# There, one phase per `run` call (each within its 10 minutes; $OUT comes back):
#     run(command="bash tools/gpu_checks.sh scribble", carry=[".gpu"])   # issue 15: the drawing bench
#     run(command="bash tools/gpu_checks.sh fast", carry=[".gpu"])       # issue 16: engine vs model card
#     run(command="bash tools/gpu_checks.sh compiled", carry=[".gpu"])   # issue 16: the compiled side
#     run(command="bash tools/gpu_checks.sh cache", carry=[".gpu"])      # issue 16: cold and warm compile
#     run(command="bash tools/gpu_checks.sh throughput", carry=[".gpu"]) # issue 16: batch jobs' images per second
#     run(command="bash tools/gpu_checks.sh memory", carry=[".gpu"])     # issue 16: SDXL's peak per memory plan
#     run(command="bash tools/gpu_checks.sh tests", carry=[".gpu"])      # the gpu-marked tests
#     run(command="bash tools/gpu_checks.sh upscale", carry=[".gpu"])    # upscaler models on the GPU (fp16)
#     run(command="bash tools/gpu_checks.sh profile", carry=[".gpu"])    # where a 1-step SD1.5 image's time goes
#     run(command="bash tools/gpu_checks.sh prompts", carry=[".gpu"])    # SDXL: a prompt read before vs a new one
#     run(command="bash tools/gpu_checks.sh parts", carry=[".gpu"])      # each part channels_last or not, VAE dtypes
#     run(command="bash tools/gpu_checks.sh loading", carry=[".gpu"])    # ControlNet, Control-LoRA, UNet file loads
# Or several phases in one call, in order, within SECONDS seconds in all (each phase at most CAP
# seconds; one that would start with under 30 seconds left is skipped), sharing the random models:
#     run(command="bash tools/gpu_checks.sh seq 570 scribble:150 fast15:120 cache15:200 memory:400", carry=[".gpu"])
# fast15/fastxl: the fast sides of one architecture only; cache15: `cache` for SD1.5; memory3: `memory`'s
# eager, fast and fast-in-7.5GiB plans only.
# The machine has no PySide6, so `cache` skips the window phase (the window's stall).
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:?which phase: wheels, seq, scribble, fast, fast15, fastxl, compiled, cache, cache15, throughput, memory, memory3, tests, profile, prompts, parts, upscale, loading}
if [ "$phase" = wheels ]; then
  mkdir -p .gpu
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --dest .gpu \
    diffusers==0.39.0 transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2 platformdirs peft==0.21.2
  exit 0
fi
out=${OUT:-bench/out}
mkdir -p "$out"
[ -d /tmp/site/diffusers ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target /tmp/site .gpu/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
ln -sfn ../resources hypersd_desktop/resources  # the package's resources, as an install has them
packages=/tmp/hypersd-packages  # the compiled steps, shared by the phases of one machine
export HYPERSD_BENCH_MODELS=/tmp/hypersd-bench-models  # the random models, likewise
if [ "$phase" = seq ]; then
  deadline=$((SECONDS + ${2:?seconds in all}))
  shift 2
  for item in "$@"; do
    name=${item%%:*} cap=${item#*:}
    left=$((deadline - SECONDS))
    if [ "$left" -lt 30 ]; then echo "# $name: skipped, ${left} s left" | tee -a "$out/seq.log"; continue; fi
    started=$SECONDS
    timeout $((left < cap ? left : cap)) bash "$0" "$name" > /dev/null || echo "# $name: ended with $?" | tee -a "$out/seq.log"
    echo "# $name: $((SECONDS - started)) s" | tee -a "$out/seq.log"
  done
  exit 0
fi
case "$phase" in
  scribble) timeout 560 python3 bench/engine_vs_model_card.py --device cuda --scribble --steps 1 ;;
  fast15) timeout 560 python3 bench/engine_vs_model_card.py --device cuda --steps 1,4 --arch sd15 --sides card,fast,fast-taesd ;;
  fastxl) timeout 560 python3 bench/engine_vs_model_card.py --device cuda --steps 1,4 --arch sdxl --sides card,fast,fast-own-vae ;;
  cache15) timeout 560 python3 bench/compile_cache.py --device cuda --arch sd15 --steps 1 --skip-window --timeout 540 ;;
  fast) timeout 560 python3 bench/engine_vs_model_card.py --device cuda --steps 1,4 ;;
  compiled) timeout 560 python3 bench/engine_vs_model_card.py --device cuda --steps 1,4 --compiled --packages "$packages" ;;
  cache) timeout 560 python3 bench/compile_cache.py --device cuda --arch sdxl --steps 1 --skip-window --timeout 540 ;;
  throughput) timeout 560 python3 bench/engine_vs_model_card.py --device cuda --steps 4 --throughput ;;
  memory3) timeout 560 python3 bench/memory_plans.py --device cuda --arch sdxl --steps 4 --plans eager,fast,fast-in-7.5GiB ;;
  memory) timeout 560 python3 bench/memory_plans.py --device cuda --arch sdxl --steps 4 ;;
  # Not pyproject's addopts: the machine has no pytest-xdist.
  tests) timeout 560 python3 -m pytest -o addopts= -p no:cacheprovider -m gpu tests/engine/test_graphs.py \
           tests/engine/test_devices.py tests/engine/test_text_encoders.py ;;
  parts) timeout 560 python3 bench/parts.py --device cuda ;;
  prompts) timeout 560 python3 bench/prompt_reuse.py --device cuda --arch sdxl ;;
  profile) timeout 560 python3 bench/profile_image.py --device cuda --trace "$out/trace.json" ;;
  upscale) timeout 560 python3 bench/upscalers.py --device cuda --side 512 --repeats 5 ;;
  loading) timeout 560 python3 bench/loading_parts.py --device cuda ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac 2>&1 | tee "$out/$phase.log"
