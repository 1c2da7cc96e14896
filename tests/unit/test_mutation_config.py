"""The mutation-testing list (tests/mutation/modules.toml) stays true: every module and scope it names exists,
its tests exist, packages map to their import names, and every survivor it calls equivalent is in
docs/rig.md's table with its reason."""

from __future__ import annotations

import pytest

from tests.mutation.run import CONFIG, REPO, Module, _change, _test_paths, load, select


def test_the_list_loads_and_names_only_modules_and_scopes_that_exist() -> None:
    config = load(CONFIG)  # it fails naming the entry when a path or an `only` name is gone
    assert config.modules
    for module in config.modules:
        assert (REPO / module.path).is_file()
        assert _test_paths(REPO, module.tests), f"{module.path}: its tests match no file"
        assert 0 < module.threshold <= 100


def test_packages_are_mutated_under_their_import_names() -> None:
    planning = Module("operator/datamanager_operator/planning.py", (), 95.0)
    assert (planning.staged, planning.name) == (
        "datamanager_operator/planning.py",
        "datamanager_operator.planning",
    )
    assert planning.globs == ["datamanager_operator.planning.*"]
    cron = Module("datamanager/cron.py", (), 95.0)
    assert (cron.staged, cron.name) == ("datamanager/cron.py", "datamanager.cron")
    (store,) = [m for m in load(CONFIG).modules if m.path.endswith("informer.py")]
    assert store.owns("datamanager_operator.informer.xǁStoreǁapply__mutmut_3")
    assert not store.owns("datamanager_operator.informer.xǁInformerǁrun__mutmut_3")


def test_modules_are_chosen_by_stem_path_or_import_name() -> None:
    modules = load(CONFIG).modules
    assert [m.path for m in select(modules, "planning, datamanager.cron")] == [
        "operator/datamanager_operator/planning.py",
        "datamanager/cron.py",
    ]
    assert select(modules, "") == modules
    with pytest.raises(SystemExit, match="'nonesuch' names no module"):
        select(modules, "nonesuch")


def test_a_test_list_can_leave_files_out() -> None:
    paths = _test_paths(REPO, ("tests/unit/operator/test_*.py", "!tests/unit/operator/test_cli.py"))
    assert "tests/unit/operator/test_planning.py" in paths
    assert "tests/unit/operator/test_cli.py" not in paths


def test_a_change_is_named_by_its_lines_before_and_after() -> None:
    diff = "\n".join(
        [
            "--- datamanager_operator/x.py",
            "+++ datamanager_operator/x.py",
            "@@ -1,3 +1,3 @@",
            " def f(a):",
            "-    return a > 1",
            "+    return a >= 1",
        ]
    )
    assert _change(diff) == "return a > 1 => return a >= 1"


def test_every_equivalent_survivor_is_documented_with_its_reason() -> None:
    config = load(CONFIG)
    docs = (REPO / "docs" / "rig.md").read_text().replace("\\|", "|")
    for equivalent in config.equivalents:
        assert any(m.owns(equivalent.function + "__mutmut_1") for m in config.modules), equivalent.function
        assert equivalent.why.strip(), equivalent.function
        row = f"`{equivalent.change}`"
        assert row in docs, f"docs/rig.md lacks {equivalent.function}: {row}"
        short = equivalent.function.rpartition(".")[2]
        assert short in docs, f"docs/rig.md lacks the function {short}"


def test_the_work_directory_is_outside_the_repository() -> None:
    from tests.mutation.run import workdir

    assert REPO not in workdir(load(CONFIG).modules).parents
    assert "mutants/" in (REPO / ".gitignore").read_text().split(), "mutmut run by hand in the worktree"
