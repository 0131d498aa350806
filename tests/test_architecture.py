"""The structure docs/architecture.md describes, checked: one module imports TRL and PEFT, one touches Optuna's
internals, and the read-only commands never import the training stack."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sweeper"
TRAINING_BOUNDARY = PACKAGE / "training" / "_trl.py"
OPTUNA_INTERNALS = PACKAGE / "storage" / "_optuna_internals.py"
VENDORED = PACKAGE / "_vendor"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_training_boundary_imports_trl_and_peft():
    importers = [path.relative_to(PACKAGE) for path in _modules() if _imported(path) & {"trl", "peft"}]
    assert importers == [TRAINING_BOUNDARY.relative_to(PACKAGE)]


# what reaching into Optuna looks like: a private module, a study's storage, a frozen trial's id, the cache's backend
_OPTUNA_INTERNAL = re.compile(r"optuna\._[a-z]|\._storage\b|\._trial_id\b|\._backend\b|optuna\.storages\._")


def test_only_one_module_touches_optunas_internals():
    # vendored code is kept as published; tests/storage/test_optuna_contract.py checks the internals it uses
    touching = [path.relative_to(PACKAGE) for path in _modules()
                if path != OPTUNA_INTERNALS and VENDORED not in path.parents and _OPTUNA_INTERNAL.search(path.read_text())]
    assert touching == [], "reach Optuna's internals through sweeper/storage/_optuna_internals.py"


@pytest.mark.integration
@pytest.mark.parametrize("command", [["status", "--json"], ["analyze", "--json"], ["report", "-o", "REPORT"]])
def test_read_only_commands_never_import_the_training_stack(command, known_study, tmp_path):
    name, url = known_study
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        f"study_name: {name}\nbase_config: {PACKAGE.parent / 'configs' / 'tiny.yaml'}\n"
        "space:\n  orpo.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}\n"
        "objectives: [{name: eval_nll_loss, direction: minimize}, {name: eval_logp_margin, direction: maximize}]\n"
        "n_trials: 10\n"
    )
    command = [str(tmp_path / "report.html") if word == "REPORT" else word for word in command]
    code = (
        "import sys, json; from sweeper.cli import main; "
        f"code = main([{command[0]!r}, {str(study_file)!r}, '--storage', {url!r}, *{command[1:]!r}]); "
        "print(json.dumps({'code': code, 'heavy': sorted({'torch', 'trl', 'peft', 'transformers'} & set(sys.modules))}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}, done.stderr[-2000:]
