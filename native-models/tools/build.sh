#!/usr/bin/env bash
# Builds the bundled emoji-ldm models from nothing (or resumes): native-models/tools/build.sh [--toy] [--max-minutes N]
# Creates the venv if needed, then runs the whole chain single-threaded at low priority, because
# the training stages are long CPU jobs that share the machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$(bash "$here/setup-venv.sh")"
cd "$here/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec nice -n "${BUILD_NICE:-15}" "$venv/bin/python" -m training.build "$@"
