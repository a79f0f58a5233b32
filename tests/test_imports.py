"""The import graph, read from the source (ast): layering and public API only (issue 10).

- `models/` and `inference/` import no private core module (`hetprobit._x`);
- no module uses numpyro's private names (`_PYRO_STACK`, `numpyro.x._y`);
- every `NoiseStructure` is defined in `hetprobit/noise/` (one family, one registry);
- imports flow hetprobit <- models <- inference.
"""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hetprobit", "models", "inference")


def _modules(*packages):
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(absolute module, imported name or None) for every import of a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                yield module, alias.name


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in dotted.split("."))


def _ids(path):
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", _modules("models", "inference"), ids=_ids)
def test_no_private_core_module_imported(path):
    for module, name in _imports(path):
        if module.split(".")[0] == "hetprobit":
            full = module if name is None else f"{module}.{name}"
            assert not _private(full), f"{path.name} imports the private {full}"


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=_ids)
def test_no_numpyro_private_names(path):
    source = path.read_text()
    assert "_PYRO_STACK" not in source, f"{path.name} uses numpyro's private _PYRO_STACK"
    for module, name in _imports(path):
        if module.split(".")[0] == "numpyro":
            full = module if name is None else f"{module}.{name}"
            assert not _private(full), f"{path.name} imports numpyro's private {full}"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            assert not (isinstance(root, ast.Name) and root.id == "numpyro"), (
                f"{path.name} reads numpyro's private attribute {node.attr}"
            )


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=_ids)
def test_imports_flow_core_to_models_to_inference(path):
    pkg = _module_name(path).split(".")[0]
    forbidden = {"hetprobit": {"models", "inference"}, "models": {"inference"}}.get(pkg, set())
    for module, _ in _imports(path):
        assert module.split(".")[0] not in forbidden, f"{path.name} ({pkg}) imports {module}"


def _structure_names():
    """Names of NoiseStructure and every class defined in hetprobit/noise/."""
    names = set()
    for path in (ROOT / "hetprobit" / "noise").glob("*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    return names


def test_no_noise_structure_defined_outside_the_noise_package():
    structures = _structure_names()
    assert {"NoiseStructure", "FullNoise", "HetXLNoise"} <= structures
    noise_dir = ROOT / "hetprobit" / "noise"
    for path in _modules(*PACKAGES):
        if noise_dir in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {
                    b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                    for b in node.bases
                }
                assert not bases & structures, (
                    f"{path.relative_to(ROOT)} defines the noise structure {node.name}"
                )
    # and at run time, after importing every module
    for path in _modules(*PACKAGES):
        importlib.import_module(_module_name(path))
    from hetprobit.noise import NoiseStructure

    stack, seen = [NoiseStructure], set()
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    outside = {
        c.__module__ + "." + c.__qualname__
        for c in seen
        if not c.__module__.startswith("hetprobit.noise")
    }
    # equinox may create wrapper subclasses in its own modules; those are not ours
    outside = {n for n in outside if n.split(".")[0] in PACKAGES}
    assert not outside, f"noise structures defined outside hetprobit/noise/: {outside}"
