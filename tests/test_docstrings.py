"""Every public module, class, function and method of the package has a docstring."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "memcross"


def _missing(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = path.relative_to(PACKAGE.parent).as_posix()
    out = [] if ast.get_docstring(tree) else [f"{name} (module)"]

    def visit(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if not ast.get_docstring(node):
                    out.append(f"{name}:{node.lineno} {prefix}{node.name}")
                if isinstance(node, ast.ClassDef):
                    visit(node.body, prefix + node.name + ".")

    visit(tree.body, "")
    return out


def test_every_public_definition_has_a_docstring():
    missing = [m for path in sorted(PACKAGE.rglob("*.py")) for m in _missing(path)]
    assert not missing, f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)
