"""bench/quality.py's own parse, where what it counts as found depends on it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


OVERLOADED = """import { OperatorFunction } from '../types';

export function switchMap<T, O>(project: (value: T) => O): OperatorFunction<T, O>;
export function switchMap<T, R, O>(project: (value: T) => O, selector: undefined): OperatorFunction<T, R>;
export function switchMap<T, R, O>(
  project: (value: T) => O,
  selector?: (outer: T) => R
): OperatorFunction<T, O | R> {
  return project as any;
}

export function plain(value: number): number {
  return value;
}
"""


def test_an_overloaded_typescript_function_is_defined_at_its_first_overload() -> None:
    """A caller sees the overload signatures, never the implementation's own (the TypeScript
    handbook, "Function Overloads"): the context holds the definition when it holds them."""
    facts = quality().tree_sitter_facts("src/switchMap.ts", OVERLOADED, "typescript")
    assert facts.defs["switchMap"] == 3  # the first overload, not the implementation (line 5)
    assert facts.defs["plain"] == 12
