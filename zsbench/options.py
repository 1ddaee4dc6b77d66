"""How option declarations become click options, and parsed values the library's typed configs
(polygraphy's argument groups, as data): the machinery of the command-line layer.

The library's config dataclasses (`ModelRef`, `ExportConfig`, `EvalOptions`, ...) know nothing of the
command line: their fields carry types and defaults only. The CLI layer (`zsbench.cli_args`) declares,
for each config class, an `Options`: field name -> `CliSpec` (flag, help, choices, ...), or, for a field
holding another config, that config's `Options`. A field's option takes its name (underscores; the
dashed spelling is accepted too), type (from the annotation) and default (the field's) from the field.

`config_command(group, "eval", EVAL)` builds a command from an `Options`; its function receives the
built config and a `Console`. The config class is named by a ``"module:Class"`` string and imported
only when the command's options are needed (parsing, `--help`, completion), so `zsbench --help` lists
every command without importing torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, Literal

import click

from zsbench.console import Console
from zsbench.registry import import_attribute

# "No default" inside `CliSpec` (dataclasses reserve MISSING for themselves).
NO_DEFAULT: Any = object()


@dataclass(frozen=True)
class Choices:
    """The allowed values of an option, read from a registry when the command's options are built.

    `unknown(value, names)` is the message for a value outside them (default: "Unknown <kind> ...").
    """

    kind: str
    names: Callable[[], Sequence[str]]
    unknown: Callable[[str, Sequence[str]], str] | None = None


@dataclass(frozen=True)
class CliSpec:
    """How a config field appears on the command line.

    Attributes:
        help: the option's help text.
        flag: the option's name when it is not the field's (``--model`` fills `models`).
        aliases: further names (``-q``, or a former spelling kept working).
        choices: the allowed values, from a registry.
        argument: a positional argument instead of an option.
        metavar: how the value is shown in `--help`.
        parse: text -> value, for values click has no type for (e.g. ``MIN:OPT:MAX``).
        cli_default: the option's default where the field has none (a `ModelRef` is always named in full).
        show_default: False, or a text shown as the default (a rule such as "cuda when present").
        comma_list: a tuple field given as one comma-separated value (``--backends torch,onnx``).
        min: the smallest value a number may take (checked when the command line is parsed).
        max: the largest.
        show: value -> text, the inverse of `parse` (how the default is written on the command line).
    """

    help: str
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    choices: Choices | None = None
    argument: bool = False
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    cli_default: Any = NO_DEFAULT
    show_default: bool | str = True
    comma_list: bool = False
    min: float | None = None
    max: float | None = None
    show: Callable[[Any], str] | None = None


@dataclass(frozen=True)
class Options:
    """The options of one config class (``"module:Class"``): field name -> its option, or, for a field holding
    another config, that config's `Options` (its options become the same command's). Other fields are no option."""

    config: str
    fields: Mapping[str, CliSpec | Options]


def option_names(name: str, aliases: Sequence[str] = ()) -> list[str]:
    """``--name`` in both spellings (``--batch_size``, ``--batch-size``), then the aliases (both spellings too)."""
    names: list[str] = []
    for each in (name, *aliases):
        if each.startswith("-") and not each.startswith("--"):
            names.append(each)  # a short option such as -q
            continue
        bare = each.lstrip("-")
        for spelling in (bare.replace("-", "_"), bare.replace("_", "-")):
            if f"--{spelling}" not in names:
                names.append(f"--{spelling}")
    return names


class NameChoice(click.Choice):
    """A click choice over a registry's names whose refusal is zsbench's message (close names, all names)."""

    def __init__(self, choices: Choices) -> None:
        super().__init__(list(choices.names()))
        self.spec = choices

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # Read the registry again: an entry registered after the options were built (a plugin) is accepted.
        self.choices = list(self.spec.names())
        if value in self.choices:
            return value
        if self.spec.unknown is not None:
            self.fail(self.spec.unknown(str(value), list(self.choices)), param, ctx)
        close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        self.fail(f"unknown {self.spec.kind} {value!r}.{hint} Available: {', '.join(map(str, self.choices))}.", param, ctx)


def _field_type(config_class: type, field: dataclasses.Field) -> Any:
    """The field's annotation as a type (annotations are strings under `from __future__ import annotations`)."""
    annotation = field.type
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(sys.modules[config_class.__module__]))  # noqa: S307 - our own annotations
    return annotation


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _click_type(annotation: Any, spec: CliSpec) -> tuple[Any, bool]:
    """(click type, multiple) for a field annotation."""
    annotation = _unwrap_optional(annotation)
    multiple = False
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation)[-1:] == (Ellipsis,):
        multiple, annotation = True, typing.get_args(annotation)[0]
    if spec.comma_list:
        return click.STRING, False
    if spec.choices is not None:
        return NameChoice(spec.choices), multiple
    if spec.parse is not None:
        return click.STRING, multiple
    if typing.get_origin(annotation) is Literal:
        return click.Choice([str(arg) for arg in typing.get_args(annotation)]), multiple
    if annotation is Path:
        return click.Path(path_type=Path), multiple
    if annotation is int and (spec.min is not None or spec.max is not None):
        return click.IntRange(spec.min, spec.max), multiple  # type: ignore[arg-type]
    if annotation is float and (spec.min is not None or spec.max is not None):
        return click.FloatRange(spec.min, spec.max), multiple
    if annotation in (int, float, str, bool):
        return annotation, multiple
    raise TypeError(f"{annotation!r}: no command-line type; give the field `parse=`")


def _parse_callback(parse: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            if isinstance(value, tuple):
                return tuple(parse(item) for item in value)
            return None if value is None else parse(value)
        except ValueError as err:
            raise click.BadParameter(str(err), ctx, param) from err

    return callback


def _comma_list_callback(item_type: Any) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """'a,b,c' -> a tuple, each item converted (and checked against the choices) by `item_type`."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        return tuple(click.types.convert_type(item_type).convert(item, param, ctx) for item in items)

    return callback


def _item_type(annotation: Any, spec: CliSpec) -> Any:
    """The click type of one item of a comma-list field."""
    item = typing.get_args(_unwrap_optional(annotation))[0]
    return NameChoice(spec.choices) if spec.choices is not None else item


def _parameter(config_class: type, field: dataclasses.Field, spec: CliSpec) -> click.Parameter:
    annotation = _field_type(config_class, field)
    click_type, multiple = _click_type(annotation, spec)
    name = spec.flag or field.name
    if field.default is not MISSING:
        default = field.default
    elif field.default_factory is not MISSING:
        default = field.default_factory()
    else:
        default = spec.cli_default
    required = default is NO_DEFAULT
    callback = _parse_callback(spec.parse) if spec.parse is not None else None
    if spec.comma_list:
        callback = _comma_list_callback(_item_type(annotation, spec))
        default = ",".join(map(str, default))
    if spec.argument:
        return click.Argument([name], type=click_type, nargs=-1 if multiple else 1, required=required, callback=callback)
    if spec.show is not None and default not in (None, NO_DEFAULT):
        default = tuple(spec.show(item) for item in default) if multiple else spec.show(default)
    is_flag = _unwrap_optional(annotation) is bool
    shown = isinstance(spec.show_default, str) or (spec.show_default and not is_flag and not required and default is not None)
    names = option_names(name, spec.aliases)
    if is_flag and default is True:  # a flag that is on by default is turned off by --no_x / --no-x
        names = [f"{opt}/--no{'_' if '_' in opt else '-'}{opt[2:]}" if opt.startswith("--") else opt for opt in names]
        shown = True
    # A required option is given no default at all: since click 8.3 an explicit `default=None` counts as a
    # value, so click would not report the option as missing (the command then failed on None).
    defaults = {} if required else {"default": default}
    return click.Option(
        [*names, name],
        type=None if is_flag else click_type,
        is_flag=is_flag,
        multiple=multiple,
        required=required,
        show_default=spec.show_default if shown else False,
        help=spec.help,
        metavar=spec.metavar,
        callback=callback,
        **defaults,
    )


def _declared(options: Options) -> list[tuple[type, dataclasses.Field, CliSpec | Options]]:
    """(config class, field, declaration) of each declared field of `options`' config, in field order."""
    config_class = import_attribute(options.config)
    return [(config_class, field, options.fields[field.name]) for field in dataclasses.fields(config_class)
            if field.name in options.fields]


def config_parameters(options: Options) -> list[click.Parameter]:
    """The click parameters of `options`, nested configs' included, in field order."""
    parameters: list[click.Parameter] = []
    for config_class, field, declared in _declared(options):
        if isinstance(declared, Options):
            parameters.extend(config_parameters(declared))
        else:
            parameters.append(_parameter(config_class, field, declared))
    return parameters


def build_config(options: Options, values: dict[str, Any]) -> Any:
    """The config `options` describes, from parsed option values (keyed by option name); the values it used are removed."""
    kwargs: dict[str, Any] = {}
    for _, field, declared in _declared(options):
        if isinstance(declared, Options):
            kwargs[field.name] = build_config(declared, values)
        else:
            kwargs[field.name] = values.pop(declared.flag or field.name)
    return import_attribute(options.config)(**kwargs)


def verbosity_options() -> list[click.Parameter]:
    """-q/--quiet and -v/--verbose, which every command takes."""
    return [
        click.Option(["-q", "--quiet"], is_flag=True, help="Only results and errors: no progress bars or lines, no DataLoader warnings."),
        click.Option(["-v", "--verbose"], is_flag=True, help="Also the details (resolved settings, where artifacts are found) on stderr."),
    ]


Borrow = dict[str, tuple[Options, tuple[str, ...]]]


def borrowed_parameters(options: Options, names: Sequence[str]) -> list[click.Parameter]:
    """The options of some fields of another config (`export --engine trt` takes `engine build`'s profile options)."""
    return [_parameter(config_class, field, declared) for config_class, field, declared in _declared(options)
            if field.name in names and isinstance(declared, CliSpec)]


def take_borrowed(options: Options, names: Sequence[str], values: dict[str, Any]) -> dict[str, Any]:
    """The borrowed fields' values, by field name (removed from `values`)."""
    return {field.name: values.pop(declared.flag or field.name) for _, field, declared in _declared(options)
            if field.name in names and isinstance(declared, CliSpec)}


class ConfigCommand(click.Command):
    """A command whose options are its config's (built on first use), borrowed fields of other configs, its own
    options, then -q/-v."""

    def __init__(self, name: str, config: Options, own_params: list[click.Parameter], borrow: Borrow, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.config = config
        self.own_params = own_params
        self.borrow = borrow
        self._built: list[click.Parameter] | None = None

    @property  # type: ignore[override]
    def params(self) -> list[click.Parameter]:
        if self._built is None:
            borrowed = [param for path, names in self.borrow.values() for param in borrowed_parameters(path, names)]
            self._built = [*config_parameters(self.config), *borrowed, *self.own_params, *verbosity_options()]
        return self._built

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        del value  # click.Command.__init__ assigns []: the parameters are built lazily above


def config_command(
    group: click.Group, name: str, config: Options, *, borrow: Borrow | None = None, cls: type[ConfigCommand] = ConfigCommand
) -> Callable[[Callable[..., Any]], click.Command]:
    """Registers `func(config, console, **own)` as `name` in `group`: options from `config`, then `borrow`'s
    (keyword -> (options, field names): `func` gets those values as a dict under the keyword), then those
    `func` declares itself with `@click.option` (such as `--dry-run`), then -q/-v."""
    borrow = borrow or {}

    def decorate(func: Callable[..., Any]) -> click.Command:
        own = list(reversed(getattr(func, "__click_params__", [])))

        def callback(quiet: bool, verbose: bool, **values: Any) -> Any:
            console = Console.from_flags(quiet, verbose)
            borrowed = {key: take_borrowed(path, names, values) for key, (path, names) in borrow.items()}
            built = build_config(config, values)
            return func(built, console, **borrowed, **values)

        command = cls(name, config, own, borrow, callback=callback, help=func.__doc__)
        group.add_command(command)
        return command

    return decorate
