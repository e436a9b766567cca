#!/usr/bin/env bash
# LCM distillation variants side by side on one accelerator, from the payload tools/lcm_gpu_payload.py
# builds (copied there as run.sh). Run from the repository root of a checkout (large folders may be absent):
#   bash .dev/lcm/run.sh [--device cuda] [--seconds 470] [--only "i1 t1"] [--force-site] [--python python3]
# Every variant stops itself at start + seconds − 50 s, scores its target network with training.lcm_proxy
# every --proxy-minutes and at the end, and keeps its best weights. Written to $OUT (default /tmp/lcm-out):
# summary.json (per variant: settings, steps, every proxy figure, the best), <variant>.pt (best target
# weights, fp16; tools/lcm_gpu_import.py turns one into a run folder) and run.log.
set -u
DEVICE=cuda SECONDS_BUDGET=470 ONLY="" FORCE_SITE=0 PY=python3 PROXY_MINUTES=1.0 PROXY_CASES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --seconds) SECONDS_BUDGET=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --force-site) FORCE_SITE=1; shift ;;
    --python) PY=$2; shift 2 ;;
    --proxy-minutes) PROXY_MINUTES=$2; shift 2 ;;
    --proxy-cases) PROXY_CASES="--proxy-cases $2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
START=$(date +%s)
P=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$P/../.." && pwd)
OUT=${OUT:-/tmp/lcm-out}
WORK=${LCM_WORK:-/tmp/lcm-work}
SITE=${LCM_SITE:-/tmp/lcm-site}
mkdir -p "$OUT" "$WORK" "$SITE"
exec > >(tee -a "$OUT/run.log") 2>&1
echo "run.sh: device $DEVICE, budget ${SECONDS_BUDGET}s, payload $P, root $ROOT, work $WORK"

# name | stage | extra train_lcm arguments (the config's recipe: lr 1e-4, batch 8, EMA 0.95, huber c 0.001)
VARIANTS="
i1|inpaint|--batch-size 64 --lr 2e-5 --ema-decay 0.95 --warmup-steps 100
i2|inpaint|--batch-size 64 --lr 5e-6 --ema-decay 0.95 --warmup-steps 100
i3|inpaint|--batch-size 64 --lr 2e-5 --ema-decay 0.99 --huber-c 0.01 --warmup-steps 100
t1|text2img|--batch-size 64 --lr 2e-5 --ema-decay 0.95 --warmup-steps 100
t2|text2img|--batch-size 64 --lr 5e-5 --ema-decay 0.95 --warmup-steps 100
"
[ -n "${LCM_VARIANTS:-}" ] && VARIANTS=$LCM_VARIANTS

# Python packages the training imports and the machine may lack (diffusers always comes from the payload).
if [ "$FORCE_SITE" = 1 ] || ! $PY -c "import diffusers" 2>/dev/null; then
  # Python's tarfile rather than tar -J: the machine may have no xz.
  $PY -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='data')" "$P/diffusers-slim.tar.xz" "$SITE"
fi
if ! $PY -c "import PIL" 2>/dev/null; then $PY -m pip install -q --no-index --no-deps --target "$SITE" "$P"/pillow-*.whl; fi
if ! $PY -c "import requests" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --target "$SITE" "$P"/requests-*.whl "$P"/urllib3-*.whl "$P"/idna-*.whl \
    "$P"/charset_normalizer-*.whl "$P"/certifi-*.whl
fi
export PYTHONPATH="$SITE:$ROOT/native-models${PYTHONPATH:+:$PYTHONPATH}"
export TRAIN_THREADS=${TRAIN_THREADS:-2}
$PY -c "import diffusers, transformers, torch; print('diffusers', diffusers.__version__, diffusers.__file__, 'transformers', transformers.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"

[ -f "$WORK/runs/inpaint/unet.pt" ] || $PY "$P/lcm_gpu_payload.py" unpack --payload "$P" --work-dir "$WORK" || exit 1
cd "$ROOT/native-models" || exit 1
# The posterior cache once, before the variants start (each would compute it otherwise).
$PY - "$WORK" "$DEVICE" <<'EOF' || exit 1
import sys
from pathlib import Path
from training.common import load_images, to_model_range
from training.config import DEFAULT_CONFIG, Config
from training.train_unet import load_trained_vae, posterior_parameters
cfg = Config(DEFAULT_CONFIG, toy=False, work_dir=Path(sys.argv[1]))
vae, _, digest = load_trained_vae(cfg)
images, _ = load_images(cfg.data_dir)
print("posterior cache", tuple(posterior_parameters(cfg, vae.to(sys.argv[2]), digest, to_model_range(images)).shape), flush=True)
EOF
echo "run.sh: prepared after $(( $(date +%s) - START ))s"

STOP=$(( START + SECONDS_BUDGET - 50 ))
mkdir -p "$WORK/v"
PIDS=""
NAMES=""
while IFS='|' read -r name stage extra; do
  [ -z "$name" ] && continue
  if [ -n "$ONLY" ] && ! echo " $ONLY " | grep -q " $name "; then continue; fi
  ref="$P/teacher_eval.json"
  if [ "$stage" = inpaint ]; then ref="$P/teacher_scheduler.json"; [ -f "$P/cases_inpaint.npz" ] && ref="$P/cases_inpaint.npz"; fi
  # shellcheck disable=SC2086
  $PY -m training.train_lcm --stage "$stage" --work-dir "$WORK" --run-dir "$WORK/v/$name" --device "$DEVICE" \
    --stop-at "$STOP" --steps 1000000 --proxy "$ref" --proxy-every-minutes "$PROXY_MINUTES" $PROXY_CASES $extra \
    > "$WORK/v/$name.log" 2>&1 &
  PIDS="$PIDS $!"
  NAMES="$NAMES $name"
  echo "run.sh: $name ($stage $extra) pid $!"
done <<< "$VARIANTS"

# Wait, but never past the budget (+ a margin for the last checkpoint and proxy score).
while [ -n "$(for p in $PIDS; do kill -0 "$p" 2>/dev/null && echo "$p"; done)" ]; do
  if [ "$(date +%s)" -ge $(( START + SECONDS_BUDGET + 20 )) ]; then
    echo "run.sh: over budget, stopping the variants"
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    sleep 5
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    break
  fi
  sleep 2
done
for name in $NAMES; do echo "== $name"; grep -v "^\s*$" "$WORK/v/$name.log" | grep -v "it/s\]$" | tail -n 8; done

$PY - "$WORK/v" "$OUT" "$VARIANTS" $NAMES <<'EOF'
import json, shutil, sys
from pathlib import Path
import torch
vdir, out, table, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
spec = {line.split("|")[0]: line.split("|")[1:] for line in table.strip().splitlines()}
summary = {}
for name in names:
    run = vdir / name
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()] if (run / "log.jsonl").exists() else []
    entry = {"stage": spec[name][0], "args": spec[name][1], "proxy": [r for r in log if "proxy" in r],
             "loss": [r for r in log if "proxy" not in r][-5:], "last_step": max((r["step"] for r in log), default=0)}
    if (run / "best.pt").exists():
        best = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
        entry["best"] = {"step": best["steps"], "proxy": best["proxy"], "file": f"{name}.pt"}
        shutil.copyfile(run / "best.pt", out / f"{name}.pt")
    summary[name] = entry
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
for name, e in summary.items():
    print(name, e["stage"], e["args"], "last step", e["last_step"], "best", json.dumps(e.get("best", {}).get("proxy")),
          "at", e.get("best", {}).get("step"))
EOF
echo "run.sh: finished after $(( $(date +%s) - START ))s"
ls -la "$OUT"
