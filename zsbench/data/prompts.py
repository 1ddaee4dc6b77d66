"""Class names and prompt templates for zero-shot classification.

They come from the installed clip_benchmark package's own data files
(``clip_benchmark/datasets/<lang>_classnames.json`` and
``<lang>_zeroshot_classification_templates.json``, for en, cn, jp, ar, it), read in place and
never copied here. ``internvl_fork_templates.json`` beside this module holds the only entry
InternVL's fork of CLIP_benchmark adds to them (birdsnap's single template, which the paper's
birdsnap result used; clip_benchmark 1.6.2 would fall back to ImageNet's 80 templates).

`--custom_classname_file` / `--custom_template_file` (JSON: dataset name -> list of strings)
override both, looked up by the full name, then the name without ``vtab/``/``wds/``, and for
templates finally ``imagenet1k``, as clip_benchmark does. A dataset missing from a custom file
keeps its default names or templates.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import string
from pathlib import Path
from typing import Any

from zsbench.data.catalog import short_name
from zsbench.errors import PromptsError, UnknownNameError

_PACKAGE = "clip_benchmark.datasets"
_FORK_TEMPLATES = Path(__file__).with_name("internvl_fork_templates.json")
_DEFAULT_TEMPLATES_KEY = "imagenet1k"  # clip_benchmark's fallback for datasets without templates

PromptTable = dict[str, list[str]]


@functools.cache
def _package_table(filename: str) -> PromptTable | None:
    resource = importlib.resources.files(_PACKAGE) / filename
    if not resource.is_file():
        return None
    return json.loads(resource.read_text(encoding="utf-8"))


@functools.cache
def prompt_languages() -> tuple[str, ...]:
    """The languages clip_benchmark ships class names for (``en``, ``cn``, ``jp``, ``ar``, ``it``)."""
    names = (resource.name for resource in importlib.resources.files(_PACKAGE).iterdir())
    return tuple(sorted(name.removesuffix("_classnames.json") for name in names if name.endswith("_classnames.json")))


def package_classnames(language: str) -> PromptTable:
    """clip_benchmark's class-name table for `language` (dataset key -> names)."""
    table = _package_table(f"{language}_classnames.json")
    if table is None:
        raise UnknownNameError("class-name language", language, prompt_languages())
    return table


def package_templates(language: str) -> PromptTable:
    """clip_benchmark's template table for `language`, with the InternVL fork's additions."""
    table = _package_table(f"{language}_zeroshot_classification_templates.json")
    if table is None:
        raise UnknownNameError("template language", language, prompt_languages())
    additions = json.loads(_FORK_TEMPLATES.read_text(encoding="utf-8")).get(language, {})
    return {**table, **additions}


def load_custom_table(path: Path, option: str) -> PromptTable:
    """Reads a custom class-name or template file: a JSON object of dataset name -> list of strings."""
    try:
        table: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PromptsError(f"Cannot read {option} {path}: {err}. Pass a JSON file mapping dataset names to lists.") from err
    valid = isinstance(table, dict) and all(
        isinstance(values, list) and all(isinstance(value, str) for value in values) for values in table.values()
    )
    if not valid:
        raise PromptsError(
            f"{option} {path} is not a JSON object of dataset name -> list of strings "
            '(e.g. {"cifar10": ["airplane", "automobile", ...]}); class-specific template dicts are not supported.'
        )
    return table


def _first_found(table: PromptTable | None, keys: list[str]) -> list[str] | None:
    return next((table[key] for key in keys if table is not None and key in table), None)


def resolve_classnames(
    name: str,
    language: str,
    classnames_key: str | None,
    data_classnames: list[str] | None,
    custom: PromptTable | None,
) -> tuple[list[str], str]:
    """The class names to use, and where they come from: a custom file's, else clip_benchmark's
    JSON (where the registry names a key), else the dataset's own (as torchvision's ``.classes``)."""
    found = _first_found(custom, [name, short_name(name)])
    if found is not None:
        return found, "--custom_classname_file"
    if classnames_key is not None:
        table = package_classnames(language)
        if classnames_key not in table:
            raise PromptsError(
                f"clip_benchmark has no {language} class names for '{classnames_key}' (it has: "
                f"{', '.join(sorted(table))}). Use --language en, or pass --custom_classname_file."
            )
        return table[classnames_key], f"clip_benchmark's {language} '{classnames_key}' list"
    if data_classnames is None:
        raise PromptsError(
            f"'{name}' carries no class names (a webdataset export without classnames.txt?). "
            "Add classnames.txt to the export, or pass --custom_classname_file."
        )
    return data_classnames, "the data"


def resolve_templates(
    name: str, language: str, data_templates: list[str] | None, custom: PromptTable | None, custom_file: Path | None = None
) -> tuple[list[str], str]:
    """The templates to use, and where they come from: a custom file's, else the data's own (webdataset
    exports), else clip_benchmark's for the dataset, falling back to ImageNet's as clip_benchmark does."""
    keys = [name, short_name(name)]
    found = _first_found(custom, [*keys, _DEFAULT_TEMPLATES_KEY])
    if found is not None:
        return found, f"--custom_template_file {custom_file}"
    if data_templates is not None:
        return data_templates, "the export's zeroshot_classification_templates.txt"
    table = package_templates(language)
    return _first_found(table, [*keys, _DEFAULT_TEMPLATES_KEY]) or [], f"clip_benchmark's {language} templates"


def check_templates(name: str, templates: list[str], source: str) -> None:
    """Refuses templates that cannot make one prompt per class: none at all, or one without ``{c}``
    (every class would get the same prompt), with another placeholder, or with a stray brace.

    Raises:
        PromptsError: naming the template and where it comes from.
    """
    if not templates:
        raise PromptsError(f"{source} gives '{name}' no templates. Expected at least one, with {{c}} where the class name goes.")
    for template in templates:
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
            placeholders = {"{" + field + "}" for _, field, spec, conversion in string.Formatter().parse(template)
                            if field is not None and (field, spec, conversion) != ("c", "", None)}
        except ValueError as err:
            raise PromptsError(f"{source}: the template {template!r} for '{name}' is not a valid template ({err}). "
                               "Write a literal brace as {{ or }}.") from err
        if placeholders:
            raise PromptsError(f"{source}: the template {template!r} for '{name}' uses {', '.join(sorted(placeholders))}; "
                               "the only placeholder is {c}, the class name (a literal brace is written {{ or }}).")
        if "c" not in fields:
            raise PromptsError(f"{source}: the template {template!r} for '{name}' has no {{c}}, so every class would get "
                               "the same prompt. Put {c} where the class name goes.")
