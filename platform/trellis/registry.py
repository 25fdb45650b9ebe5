"""The model registry: every model of the core and the plugins, described once.

Generic features (REST API, audit, record events, import/export, search,
personal-data export) look models up here instead of knowing any plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from marshmallow import Schema
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema

from trellis.specs import ModelSpec


class RegistryError(Exception):
    """A model could not be registered; the message names the plugins."""


@dataclass(frozen=True)
class RegisteredModel:
    """A model as the registry knows it."""

    plugin: str
    spec: ModelSpec
    schema: type[Schema]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self) -> type:
        return self.spec.model

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def searchable(self) -> tuple[str, ...]:
        return tuple(self.spec.searchable)


def auto_schema(model: type) -> type[Schema]:
    """A marshmallow schema derived from the model's columns."""
    meta = type("Meta", (), {"model": model, "include_fk": True, "load_instance": False})
    return type(f"{model.__name__}Schema", (SQLAlchemyAutoSchema,), {"Meta": meta})


class ModelRegistry:
    """Registry of models by name and by class."""

    def __init__(self) -> None:
        self._by_name: dict[str, RegisteredModel] = {}
        self._by_class: dict[type, RegisteredModel] = {}

    def register(self, plugin: str, spec: ModelSpec) -> RegisteredModel:
        """Register ``spec`` for ``plugin``; a name or class already taken is an error."""
        if not isinstance(spec, ModelSpec):
            raise RegistryError(f"plugin {plugin!r} returned {spec!r}, not a ModelSpec")
        if not getattr(spec.model, "__tablename__", None):
            raise RegistryError(f"plugin {plugin!r}: model {spec.model.__name__} needs __tablename__")
        for taken in (self._by_name.get(spec.name), self._by_class.get(spec.model)):
            if taken is not None:
                raise RegistryError(
                    f"plugin {plugin!r} registers model {spec.name!r}, "
                    f"already registered by plugin {taken.plugin!r}"
                )
        # One declarative class registry serves every plugin: a second class of
        # the same name makes string relationships ("Ticket") ambiguous.
        clash = next((e for e in self._by_class.values()
                      if e.model.__name__ == spec.model.__name__), None)
        if clash is not None:
            raise RegistryError(
                f"plugin {plugin!r} registers a model class named {spec.model.__name__!r} "
                f"({spec.model.__module__}), and plugin {clash.plugin!r} has one "
                f"({clash.model.__module__}): rename one of them")
        entry = RegisteredModel(plugin, spec, spec.schema or auto_schema(spec.model))
        self._by_name[spec.name] = entry
        self._by_class[spec.model] = entry
        return entry

    def unregister_plugin(self, plugin: str) -> None:
        for entry in [e for e in self._by_name.values() if e.plugin == plugin]:
            del self._by_name[entry.name]
            del self._by_class[entry.model]

    def get(self, name: str) -> RegisteredModel:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no model named {name!r} in the registry") from None

    def for_class(self, model: type) -> RegisteredModel | None:
        """The entry for a model class (or one of its registered bases)."""
        for klass in model.__mro__:
            entry = self._by_class.get(klass)
            if entry is not None:
                return entry
        return None

    def for_plugin(self, plugin: str) -> list[RegisteredModel]:
        return [e for e in self._by_name.values() if e.plugin == plugin]

    def __iter__(self) -> Iterator[RegisteredModel]:
        return iter(sorted(self._by_name.values(), key=lambda e: e.name))

    def __contains__(self, name: Any) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)
