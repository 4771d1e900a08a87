#!/usr/bin/env bash
# Mutation testing with mutmut 3 for robust/faults, robust/retraining/_curves.py, robust/guidance,
# robust/attacks and robust/attacks/dgn, each against its own tests. NOT part of CI: it takes long.
#
# What it does
#   For each module it copies the repository (tar; no .git, .venv, mlruns, mutants, caches) to
#   WORKDIR/<module>, adds the module's `only_mutate` (and `do_not_mutate`) and test selection
#   to the copy's [tool.mutmut] section (the shared settings live in pyproject.toml), and runs
#   `mutmut run` there. mutmut writes mutants/ inside the copy only; the repository itself is
#   never touched. Modules and their tests:
#     faults      robust/faults/*             tests/faults
#     curves      robust/retraining/_curves.py tests/retraining/test_curves.py
#                                              tests/retraining/test_report.py (summarise/compare)
#     guidance    robust/guidance/*           tests/guidance
#     attacks     robust/attacks/*, not dgn/  tests/attacks
#     dgn         robust/attacks/dgn/*        tests/attacks
#   Every mutant runs its tests in a fresh pytest session; the session's trained digits model
#   (tests/conftest.py, 4 s) is trained once per module and then loaded from
#   WORKDIR/<module>/.test-cache (ROBUST_TEST_MODEL_CACHE, read by tests/attacks/conftest.py;
#   training uses none of the mutated code; the cache is rebuilt on every invocation).
#
# Usage
#   tools/mutation.sh [MODULE ...]        # default: faults curves guidance attacks dgn
#   WORKDIR=/tmp/mut CHILDREN=2 tools/mutation.sh faults
#   Environment: WORKDIR (default: a new mktemp -d), CHILDREN (mutmut --max-children, default 2),
#   PYTHON_VENV (default: <repo>/.venv, with mutmut>=3.8: pip install -e ".[mutation]"),
#   RERUN=not-killed (retest every mutant the last run did not kill, see below).
#   Re-running with the same WORKDIR resumes: mutmut keeps results in WORKDIR/<module>/mutants
#   and retests only the mutants of functions whose source changed. A mutant that survived keeps
#   that verdict when only the tests changed: after adding tests, run again with
#   RERUN=not-killed (mutmut then collects the new tests' coverage and retests those mutants).
#
# How long (measured 2026-12 on 2 shared CPU cores, CHILDREN=2 resp. 1): faults 353 mutants in
#   ~1.5 min, curves 339 in ~2 min, guidance 1177 in ~20 min; attacks 1119 (before APGD, FAB,
#   Square and AutoAttack) in ~14 min and dgn 1558 in ~15 min with CHILDREN=1 at nice 19 beside
#   other work (every mutant reruns the tests that call the mutated function; the dgn tests
#   train small generators). Run them on their own: `tools/mutation.sh attacks dgn`.
#
# How to read the results
#   Per module the script prints mutmut's counts (from `mutmut export-cicd-stats`) and the score
#   killed / (killed + survived + timeout + suspicious + segfault + no tests), and the same without
#   "no tests" (mutants in functions that none of the module's own tests calls). It writes
#   WORKDIR/<module>/results.txt (`mutmut results`: one line per mutant that was not killed).
#   To look at one mutant:
#     cd WORKDIR/<module> && <venv>/bin/mutmut show robust.faults._select.x_top_suspicious__mutmut_3
#   or browse all of them interactively with `mutmut browse` in that directory.
#   Status: killed = a test failed (good); survived = all tests passed (test gap, or an equivalent
#   mutant); timeout / suspicious = ran far longer than the baseline; no tests = no test calls
#   the function; skipped = not run. Goal: >= 85 % killed per module.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYTHON_VENV:-$REPO/.venv}
CHILDREN=${CHILDREN:-2}
WORKDIR=${WORKDIR:-$(mktemp -d -t robust-mutation.XXXXXX)}
MODULES=("$@")
[ ${#MODULES[@]} -eq 0 ] && MODULES=(faults curves guidance attacks dgn)
RERUN=${RERUN:-}
case "$RERUN" in ""|not-killed) ;; *) echo "RERUN must be empty or not-killed" >&2; exit 2;; esac

[ -x "$VENV/bin/mutmut" ] || { echo "mutmut not found in $VENV (pip install mutmut)" >&2; exit 2; }
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
case "$WORKDIR/" in "$REPO"/*) echo "WORKDIR must be outside the repository" >&2; exit 2;; esac

# one thread per test process: mutmut runs CHILDREN forks at once
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1

select_module() {  # -> only_mutate, do_not_mutate and test selection, as TOML arrays
    SKIP='[]'
    case "$1" in
        faults)   ONLY='["robust/faults/*"]'; TESTS='["tests/faults"]';;
        curves)   ONLY='["robust/retraining/_curves.py"]'
                  TESTS='["tests/retraining/test_curves.py", "tests/retraining/test_report.py"]';;
        guidance) ONLY='["robust/guidance/*"]'; TESTS='["tests/guidance"]';;
        attacks)  ONLY='["robust/attacks/*"]'; SKIP='["robust/attacks/dgn/*"]'
                  TESTS='["tests/attacks"]';;
        dgn)      ONLY='["robust/attacks/dgn/*"]'; TESTS='["tests/attacks"]';;
        *) echo "unknown module '$1' (faults, curves, guidance, attacks, dgn)" >&2; exit 2;;
    esac
}

for module in "${MODULES[@]}"; do
    select_module "$module"
    dir=$WORKDIR/$module
    mkdir -p "$dir"
    # fresh copy of the sources (keeps an existing mutants/ so that a rerun resumes)
    tar -C "$REPO" -cf - --exclude=./.venv --exclude=./mlruns --exclude=./mutants --exclude=./.git \
        --exclude=__pycache__ --exclude=./.hypothesis --exclude=./.pytest_cache \
        --exclude=./.ruff_cache --exclude='*.egg-info' . | tar -C "$dir" -xf -
    cat >> "$dir/pyproject.toml" <<EOF
# added by tools/mutation.sh for module '$module'
only_mutate = $ONLY
do_not_mutate = $SKIP
pytest_add_cli_args_test_selection = $TESTS
EOF
    rm -rf "$dir/.test-cache"
    export ROBUST_TEST_MODEL_CACHE=$dir/.test-cache
    names=()
    if [ "$RERUN" = not-killed ] && [ -d "$dir/mutants" ]; then
        # `mutmut results` lists every mutant that was not killed as "    <name>: <status>"
        mapfile -t names < <(cd "$dir" && PYTHONPATH="$dir" "$VENV/bin/mutmut" results 2>/dev/null \
            | sed -n 's/^ *\([A-Za-z0-9_.]*__mutmut_[0-9]*\): .*/\1/p')
    fi
    echo "=== $module: mutating $ONLY (not $SKIP) against $TESTS in $dir" \
        "${RERUN:+(retesting ${#names[@]} mutants not killed)}"
    start=$(date +%s)
    # PYTHONPATH: mutmut puts mutants/ first on sys.path; the copy (not the editable install of
    # the repo) must come next so that nothing imports the repository's unmutated robust/.
    if [ "$RERUN" = not-killed ] && [ ${#names[@]} -eq 0 ]; then
        echo "    nothing to retest"
    else
        (cd "$dir" && PYTHONPATH="$dir" "$VENV/bin/mutmut" run --max-children "$CHILDREN" \
            "${names[@]}") > "$dir/run.log" 2>&1 || echo "mutmut run exited with $? (see $dir/run.log)"
    fi
    secs=$(( $(date +%s) - start ))
    (cd "$dir" && PYTHONPATH="$dir" "$VENV/bin/mutmut" results > results.txt 2>&1 || true)
    (cd "$dir" && PYTHONPATH="$dir" "$VENV/bin/mutmut" export-cicd-stats > /dev/null 2>&1 || true)
    "$VENV/bin/python" - "$dir/mutants/mutmut-cicd-stats.json" "$module" "$secs" <<'EOF'
import json, sys
path, module, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    s = json.load(open(path))
except OSError:
    sys.exit(f"{module}: no stats ({path} missing)")
# "no tests" (no test calls the function) counts as not killed, like a survivor
tested = sum(s[k] for k in ("killed", "survived", "timeout", "suspicious", "segfault", "no_tests"))
s["not_checked"] = s["total"] - tested - s["skipped"]
score = 100 * s["killed"] / tested if tested else float("nan")
covered = tested - s["no_tests"]
cov_score = 100 * s["killed"] / covered if covered else float("nan")
counts = ", ".join(f"{k} {v}" for k, v in s.items())
print(f"{module}: {counts}")
print(f"    score {score:.1f}% ({s['killed']}/{tested} tested), {cov_score:.1f}% of the mutants"
      f" in functions the module's tests call ({s['killed']}/{covered}); {secs} s")
EOF
    echo "    survivors etc.: $dir/results.txt   log: $dir/run.log"
done
echo "work directory: $WORKDIR"
