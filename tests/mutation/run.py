"""Mutation testing and line coverage of the pure modules that tests/mutation/modules.toml lists.

``python tests/mutation/run.py mutation [--modules planning,cron]``   (``make mutation [MODULES=...]``)
``python tests/mutation/run.py coverage [--modules ...]``             (``make coverage [MODULES=...]``)

``mutation`` runs mutmut 3 on a copy of the worktree made afresh each run outside the repository
(``~/.cache/datamanager-mutation``, or ``$DATAMANAGER_MUTATION_HOME``), and handles two quirks that would
make its score lie:

- mutmut names a module after its file's path (it strips only ``src.``), and a mutant is switched on only
  where that name equals the function's ``__module__``: mutated in ``operator/datamanager_operator/``, no
  mutant would ever run. The copy therefore also holds each package under its import name
  (``datamanager_operator/``, ``datamanager_workers/``); that is what mutmut mutates and the tests import.
  ``operator/`` and ``workers/`` stay as they are, for the tests that read repository files.
- mutmut runs each mutant in a process forked from one that has already imported and run the tests, so a
  value a test module computed at import time, or a module-level cache the clean run filled (the consumer
  parser's route caches), can hide a mutant. Every mutant mutmut did not report killed (survived, no tests,
  timeout, suspicious) is therefore run again in a fresh interpreter, where it is active from the first
  import: all the module's ``tests``, with ``-x`` and a per-test timeout. That verdict is the one counted.

Per module it prints mutants, killed (by mutmut or by the re-check), survived, equivalent (survivors the
config lists, each with why) and score = killed / (mutants - equivalent). It exits 1 when a module is under
its threshold or a listed equivalent is killed or gone (the list is stale), and stops with a message when
the set-up cannot be trusted (the clean tests fail in a fresh process, a module is not imported from the
mutated copy, a module's tests cannot run).

``coverage`` runs the modules' unit tests alone under coverage.py and prints, per module (or per ``only``
scope), the share of its lines that ran; it exits 1 when one is under ``coverage_threshold``.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().with_name("modules.toml")
# folders that hold packages whose import names are not their paths
IMPORT_FOLDERS = ("operator", "workers")
KILLED_BY_MUTMUT = {1, 3}  # mutmut's "killed" exit codes (3: pytest internal error, as mutmut counts it)
PER_TEST_TIMEOUT = 60  # seconds; a mutant that hangs a test is caught by it
RECHECK_TIMEOUT = 1800  # seconds for one fresh-process re-check, as a whole; then it is killed (-9)
# pytest's exit codes that catch a mutant: tests failed, collection failed (2: the mutant broke an import), an
# internal error (3, as mutmut counts it), or killed for hanging
FRESH_KILLED = {1, 2, 3, -9}


@dataclass(frozen=True)
class Scope:
    name: str  # as written in the config: Class, function or Class.method
    glob: str  # mutmut's mutant names in it
    lines: tuple[int, int]  # first and last line of its definition

    @property
    def run_glob(self) -> str:
        """What ``mutmut run`` is given: it also matches the function's own name, so that mutmut runs only
        the tests that call it for its clean run, not the whole selection."""
        return self.glob.removesuffix("*").removesuffix("__mutmut_") + "*"


@dataclass(frozen=True)
class Module:
    path: str  # in the repository
    tests: tuple[str, ...]
    threshold: float
    scopes: tuple[Scope, ...] = ()  # empty: the whole module

    @property
    def staged(self) -> str:
        """The path under the package's import name: what mutmut mutates."""
        parts = Path(self.path).parts
        return str(Path(*parts[1:])) if parts[0] in IMPORT_FOLDERS else self.path

    @property
    def name(self) -> str:
        return self.staged.removesuffix(".py").replace("/", ".")

    @property
    def globs(self) -> list[str]:
        return [s.glob for s in self.scopes] or [f"{self.name}.*"]

    @property
    def run_globs(self) -> list[str]:
        return [s.run_glob for s in self.scopes] or [f"{self.name}.*"]

    def owns(self, mutant: str) -> bool:
        return any(fnmatch.fnmatchcase(mutant, g) for g in self.globs)


@dataclass(frozen=True)
class Equivalent:
    function: str
    change: str
    why: str


@dataclass
class Config:
    modules: list[Module]
    equivalents: list[Equivalent]
    coverage_threshold: float


@dataclass
class Result:
    module: Module
    mutants: int = 0
    killed_by_mutmut: int = 0
    killed_fresh: int = 0  # mutmut's survivors (or untested, or timed out) that a fresh process kills
    survivors: dict[str, str] = field(default_factory=dict)  # mutant name -> its change
    equivalent: dict[str, Equivalent] = field(default_factory=dict)  # mutant name -> why

    @property
    def killed(self) -> int:
        return self.killed_by_mutmut + self.killed_fresh

    @property
    def score(self) -> float:
        counted = self.mutants - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0

    @property
    def passed(self) -> bool:
        return self.score >= self.module.threshold


def _scopes(path: str, only: list[str]) -> tuple[Scope, ...]:
    """Resolves ``only`` names to mutmut's mutant names and line ranges; fails on a name that is not there."""
    tree = ast.parse((REPO / path).read_text())
    module = Module(path, (), 0.0).name
    found: list[Scope] = []
    for name in only:
        outer, _, inner = name.partition(".")
        node = next((n for n in tree.body if getattr(n, "name", None) == outer), None)
        if inner and isinstance(node, ast.ClassDef):
            node = next((n for n in node.body if getattr(n, "name", None) == inner), None)
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            raise SystemExit(f"{CONFIG.name}: {path} has no class or function {name!r} (see `only`)")
        if inner:
            glob = f"{module}.xǁ{outer}ǁ{inner}__mutmut_*"
        elif isinstance(node, ast.ClassDef):
            glob = f"{module}.xǁ{outer}ǁ*"
        else:
            glob = f"{module}.x_{outer}__mutmut_*"
        found.append(Scope(name, glob, (node.lineno, node.end_lineno or node.lineno)))
    return tuple(found)


def load(path: Path) -> Config:
    raw = tomllib.loads(path.read_text())
    threshold = float(raw.get("threshold", 95.0))
    named: dict[str, list[str]] = raw.get("tests", {})
    modules = []
    for entry in raw.get("module", []):
        if not (REPO / entry["path"]).is_file():
            raise SystemExit(f"{path.name}: {entry['path']} does not exist: fix its [[module]] entry")
        modules.append(
            Module(
                path=entry["path"],
                tests=tuple(
                    t for name in entry.get("tests", ["tests/unit"]) for t in named.get(name, [name])
                ),
                threshold=float(entry.get("threshold", threshold)),
                scopes=_scopes(entry["path"], list(entry.get("only", []))),
            )
        )
    equivalents = [Equivalent(e["function"], e["change"], e["why"]) for e in raw.get("equivalent", [])]
    return Config(modules, equivalents, float(raw.get("coverage_threshold", 95.0)))


def select(modules: list[Module], wanted: str) -> list[Module]:
    """Modules named by path, dotted import name, file stem or path suffix (comma or space separated)."""
    if not wanted.strip():
        return modules
    chosen: list[Module] = []
    for token in re.split(r"[,\s]+", wanted.strip()):
        matches = [
            m
            for m in modules
            if token in (m.path, m.name, Path(m.path).stem) or m.path.endswith("/" + token.lstrip("/"))
        ]
        if not matches:
            known = ", ".join(Path(m.path).stem for m in modules)
            raise SystemExit(f"MODULES: {token!r} names no module in {CONFIG.name} (known: {known})")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def workdir(modules: list[Module]) -> Path:
    """One per worktree and set of modules, so that two subsets can run at once."""
    home = Path(
        os.environ.get("DATAMANAGER_MUTATION_HOME") or Path.home() / ".cache" / "datamanager-mutation"
    )
    return home / f"{REPO.name}-{_digest(str(REPO))}" / _digest(" ".join(sorted(m.path for m in modules)))


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _toml_list(items: list[str]) -> str:
    return json.dumps(items, ensure_ascii=False)  # a JSON list of plain strings is a TOML array


def stage(work: Path, modules: list[Module], tests: list[str]) -> None:
    """A fresh copy of the worktree (tracked and new files as they are now), packages under import names."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / rel)
    roots = ["datamanager"]
    for folder in IMPORT_FOLDERS:
        for package in sorted((work / folder).iterdir()):
            if (package / "__init__.py").is_file():
                shutil.copytree(package, work / package.name)
                roots.append(package.name)
    also_copy = sorted(p.name for p in work.iterdir() if p.name not in roots)
    preload = work / "preload.txt"
    _third_party_imports(work, tests, roots, preload)
    table = "\n".join(
        [
            "",
            "[tool.mutmut]",
            f"source_paths = {_toml_list(roots)}",
            f"only_mutate = {_toml_list([m.staged for m in modules])}",
            f"also_copy = {_toml_list(also_copy)}",
            f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
            "use_git_change_detection = false",
            "",
        ]
    )
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + table)


def _third_party_imports(work: Path, tests: list[str], ours: list[str], out: Path) -> None:
    """Writes to ``out`` the top-level modules that collecting ``tests`` imports, except ours: what the
    re-check's fork server (fresh.py) imports before it forks, so a re-check starts fast and still fresh."""
    script = (
        "import sys, pytest\n"
        "code = pytest.main(['--collect-only', '-qq', '-p', 'no:cacheprovider', *sys.argv[3:]])\n"
        "ours = set(sys.argv[2].split(',')) | {'tests', 'conftest', '__main__'}\n"
        # not the private ones (_asyncio, _pytest...): their packages import them; _asyncio imported on its
        # own before asyncio leaves aiohttp's timeouts outside any task in the forked children
        "names = sorted({n.partition('.')[0] for n in list(sys.modules) if not n.startswith('_')} - ours)\n"
        "open(sys.argv[1], 'w').write('\\n'.join(names) + '\\n')\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out), ",".join(ours), *tests],
        cwd=work,
        env=_fresh_env(""),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"collecting {' '.join(tests)} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")


def _fresh_env(mutant: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUTANT_UNDER_TEST", "PYTEST_"))}
    env["MUTANT_UNDER_TEST"] = mutant
    return env


def _test_paths(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """The test files and folders ``patterns`` name under ``root``, less those a ``!pattern`` names; a glob
    may match nothing (yet)."""
    paths: list[str] = []
    for pattern in patterns:
        found = sorted(str(p.relative_to(root)) for p in root.glob(pattern.removeprefix("!")))
        paths = [p for p in paths if p not in found] if pattern.startswith("!") else paths + found
    return paths


def fresh_verdicts(work: Path, jobs: list[dict[str, object]], parallel: int) -> dict[str, int]:
    """pytest's exit code for each job, each in a fresh process (tests/mutation/fresh.py), by mutant name."""
    errors = work / "fresh.stderr"
    verdicts: dict[str, int] = {}
    with errors.open("w") as stderr:
        server = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("fresh.py")),
                f"--preload={work / 'preload.txt'}",
                f"--jobs={parallel}",
                f"--per-test-timeout={PER_TEST_TIMEOUT}",
                f"--wall-timeout={RECHECK_TIMEOUT}",
            ],
            cwd=work / "mutants",
            env=_fresh_env(""),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert server.stdin is not None
        assert server.stdout is not None
        server.stdin.write("".join(json.dumps(job) + "\n" for job in jobs))  # read whole before any answer
        server.stdin.close()
        for line in server.stdout:
            verdict = json.loads(line)
            verdicts[verdict["mutant"]] = int(verdict["exit"])
            if len(jobs) > 1 and len(verdicts) % 25 == 0:
                print(f"  {len(verdicts)}/{len(jobs)} re-checked", flush=True)
    if server.wait() != 0:
        raise SystemExit(f"the fresh-process re-check failed:\n{errors.read_text()[-3000:]}")
    return verdicts


def check_setup(work: Path, modules: list[Module], tests: list[str]) -> None:
    """Fresh-process verdicts mean something only if a fresh process imports the mutated copies and the
    unmutated tests pass there."""
    (imported,) = fresh_verdicts(work, [{"mutant": "", "imports": [m.name for m in modules]}], 1).values()
    if imported != 0:
        raise SystemExit("a fresh process does not import the mutated copies (see above)")
    (clean,) = fresh_verdicts(work, [{"mutant": "", "tests": tests}], 1).values()
    if clean != 0:
        raise SystemExit(
            f"the unmutated tests fail in a fresh process (pytest exit {clean}): {' '.join(tests)}"
        )


def _diffs(work: Path, mutants: list[str]) -> dict[str, str]:
    """mutmut's diff of each mutant (what ``mutmut show`` prints), read in one process."""
    script = (
        "import json, sys\n"
        "from mutmut.mutation.diff_apply import get_diff_for_mutant\n"
        "print(json.dumps({name: get_diff_for_mutant(name) for name in sys.argv[1:]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *mutants], cwd=work, check=True, capture_output=True, text=True
    )
    found: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return found


def _change(diff: str) -> str:
    """ "<original line(s)> => <mutated line(s)>" from mutmut's unified diff of the function."""
    body = [line for line in diff.splitlines() if not line.startswith(("---", "+++", "@@"))]
    removed = [line[1:].strip() for line in body if line.startswith("-")]
    added = [line[1:].strip() for line in body if line.startswith("+")]
    return f"{' | '.join(removed)} => {' | '.join(added)}"


def _function(mutant: str) -> str:
    return mutant.partition("__mutmut_")[0]


def mutate(config: Config, modules: list[Module], jobs: int) -> int:
    work = workdir(modules)
    started = time.monotonic()
    print(f"mutation: {len(modules)} module(s), work directory {work}", flush=True)
    for module in modules:
        if not _test_paths(REPO, module.tests):
            raise SystemExit(f"{module.path}: no tests match {list(module.tests)}: fix its `tests`")
    # mutmut runs, for each mutant, those of the selected modules' tests that call the mutated function
    selection = sorted({t for m in modules for t in _test_paths(REPO, m.tests)})
    stage(work, modules, selection)
    log = work / "mutmut.log"
    with log.open("w") as out:
        code = subprocess.run(
            [_bin("mutmut"), "run", "--max-children", str(jobs), *[g for m in modules for g in m.run_globs]],
            cwd=work,
            env=_fresh_env(""),
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    if code != 0:
        print(log.read_text()[-4000:])
        raise SystemExit(f"mutmut failed (exit {code}); its whole output: {log}")
    mutmut_seconds = time.monotonic() - started
    print(f"mutmut: done in {mutmut_seconds:.0f} s (output: {log})", flush=True)

    mutants_dir = work / "mutants"
    results: dict[str, Result] = {m.path: Result(m) for m in modules}
    pending: list[tuple[Module, str]] = []
    for module in modules:
        meta = json.loads((mutants_dir / (module.staged + ".meta")).read_text())
        for mutant, exit_code in meta["exit_code_by_key"].items():
            if not module.owns(mutant):
                continue
            results[module.path].mutants += 1
            if exit_code in KILLED_BY_MUTMUT:
                results[module.path].killed_by_mutmut += 1
            else:
                pending.append((module, mutant))

    check_setup(work, modules, selection)
    print(f"re-checking {len(pending)} mutant(s) in fresh processes", flush=True)
    tests_of = {m.path: _test_paths(mutants_dir, m.tests) for m in modules}
    verdicts = fresh_verdicts(work, [{"mutant": n, "tests": tests_of[m.path]} for m, n in pending], jobs)
    survived: list[tuple[Module, str]] = []
    for module, mutant in pending:
        code = verdicts[mutant]
        if code == 0:
            survived.append((module, mutant))
        elif code in FRESH_KILLED:
            results[module.path].killed_fresh += 1
        else:  # 4 usage error, 5 no tests, 70 the re-check itself broke: nothing to count
            raise SystemExit(f"{mutant}: its re-check ended with exit {code} (tests: {module.tests})")
    recheck_seconds = time.monotonic() - started - mutmut_seconds

    equivalents = {(e.function, e.change): e for e in config.equivalents}
    used: set[tuple[str, str]] = set()
    diffs: list[str] = []
    diffs_of = _diffs(work, [mutant for _, mutant in survived])
    for module, mutant in survived:
        diff = diffs_of[mutant]
        key = (_function(mutant), _change(diff))
        if key in equivalents:
            results[module.path].equivalent[mutant] = equivalents[key]
            used.add(key)
        else:
            results[module.path].survivors[mutant] = key[1]
            diffs.append(diff)
    stale = [
        e
        for e in config.equivalents
        if (e.function, e.change) not in used and any(m.owns(e.function + "__mutmut_0") for m in modules)
    ]
    (work / "survivors.diff").write_text("\n\n".join(diffs) + "\n")

    return report(list(results.values()), stale, work, mutmut_seconds, recheck_seconds)


def report(
    results: list[Result], stale: list[Equivalent], work: Path, mutmut_s: float, recheck_s: float
) -> int:
    header = ("module", "mutants", "killed", "(fresh)", "survived", "equivalent", "score", "min", "")
    rows = [
        (
            r.module.path
            + ("" if not r.module.scopes else f" ({', '.join(s.name for s in r.module.scopes)})"),
            str(r.mutants),
            str(r.killed),
            str(r.killed_fresh),
            str(len(r.survivors)),
            str(len(r.equivalent)),
            f"{r.score:.1f}%",
            f"{r.module.threshold:.0f}%",
            "ok" if r.passed else "UNDER",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(
        "\nkilled counts mutmut's kills and (fresh) those of its survivors a fresh process killed; "
        "score = killed / (mutants - equivalent)"
    )
    for r in results:
        for mutant, change in sorted(r.survivors.items()):
            print(f"  survived  {mutant}\n            {change}")
    if any(r.survivors for r in results):
        print(f"diffs of the survivors: {work / 'survivors.diff'}; `mutmut show NAME` in {work}")
    for e in stale:
        print(f"  STALE equivalent (killed, or no longer a mutant): {e.function}: {e.change}")
    print(f"time: mutmut {mutmut_s:.0f} s, fresh re-checks {recheck_s:.0f} s")
    (work / "report.json").write_text(
        json.dumps(
            [
                {
                    "module": r.module.path,
                    "mutants": r.mutants,
                    "killed": r.killed,
                    "killed_fresh": r.killed_fresh,
                    "survived": sorted(r.survivors),
                    "equivalent": sorted(r.equivalent),
                    "score": round(r.score, 2),
                }
                for r in results
            ],
            indent=2,
        )
    )
    return 0 if all(r.passed for r in results) and not stale else 1


def _ranges(lines: list[int]) -> str:
    spans: list[str] = []
    for line in sorted(lines):
        if spans and spans[-1].split("-")[-1] == str(line - 1):
            spans[-1] = f"{spans[-1].split('-')[0]}-{line}"
        else:
            spans.append(str(line))
    return ",".join(spans)


def measure_coverage(config: Config, modules: list[Module]) -> int:
    import coverage  # the dev extras have it; only this command needs it

    data = workdir(modules) / "coverage" / ".coverage"
    data.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    include = ",".join(str(REPO / m.path) for m in modules)
    tests = sorted({t for m in modules for t in _test_paths(REPO, m.tests)})
    command = [sys.executable, "-m", "coverage", "run", f"--data-file={data}", f"--include={include}"]
    code = subprocess.run(
        [*command, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=REPO
    ).returncode
    if code != 0:
        raise SystemExit(f"the unit tier failed (pytest exit {code}): coverage is not measured")
    measured = coverage.Coverage(data_file=str(data))
    measured.load()
    print(f"\nlines of each pure module the unit tier runs ({time.monotonic() - started:.0f} s):")
    failed = False
    for module in modules:
        _, statements, _, missing, _ = measured.analysis2(str(REPO / module.path))
        if module.scopes:
            inside = [range(s.lines[0], s.lines[1] + 1) for s in module.scopes]
            statements = [line for line in statements if any(line in r for r in inside)]
            missing = [line for line in missing if any(line in r for r in inside)]
        share = 100.0 * (len(statements) - len(missing)) / len(statements) if statements else 100.0
        ok = share >= config.coverage_threshold
        failed |= not ok
        scope = f" ({', '.join(s.name for s in module.scopes)})" if module.scopes else ""
        missed = f"  missing: {_ranges(list(missing))}" if missing else ""
        print(f"  {'ok   ' if ok else 'UNDER'} {share:5.1f}%  {module.path}{scope}{missed}")
    print(f"minimum: {config.coverage_threshold:.0f}% of each module's lines")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["mutation", "coverage"])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--modules", default="", help="a subset: paths, import names or file stems")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel mutant runs")
    args = parser.parse_args()
    config = load(args.config)
    modules = select(config.modules, args.modules)
    if args.command == "coverage":
        return measure_coverage(config, modules)
    return mutate(config, modules, max(args.jobs, 1))


if __name__ == "__main__":
    sys.exit(main())
