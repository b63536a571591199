"""Object specs: one YAML file per extracted Salesforce object under `config/objects/`.

A spec says what to read (fields, cursor, lookback, deletions), what the dimension tracks and
carries, and how fresh the tables must stay. Every name of an object's tables, assets, models,
jobs and checks is derived here from its API name, so adding an object adds no Python.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, Field, ValidationError, model_validator

from sf_lakehouse.config.errors import ConfigError, StrictModel, describe_validation_error

RAW_PREFIX = "sf_raw"
STAGING_PREFIX = "sf_staging"
CURATED_PREFIX = "sf_curated"
OBJECTS_DIR_NAME = "objects"

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*(__c)?$")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Fields every extraction needs, whatever the spec lists.
REQUIRED_FIELDS = ("Id", "SystemModstamp")
DELETED_FIELD = "IsDeleted"
# Key prefixes of standard objects (a custom object's prefix is org-specific: ask describe()).
STANDARD_ID_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "Pricebook2": "01s",
    "Product2": "01t",
    "Asset": "02i",
    "Case": "500",
    "Campaign": "701",
    "Contract": "800",
    "Order": "801",
}
# Salesforce never deletes Users (they are deactivated), and User has no IsDeleted field.
OBJECTS_WITHOUT_DELETIONS = frozenset({"User"})


def snake_case(api_name: str) -> str:
    """`User` -> `user`, `Audit_Phase__c` -> `audit_phase`, `OwnerId` -> `owner_id`,
    `Invoice_Line__c` -> `invoice_line`: the project's column and table naming rule."""
    base = api_name.removesuffix("__c")
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", base)
    return re.sub(r"_+", "_", spaced).strip("_").lower()


def _field_name(value: str) -> str:
    if not _FIELD_NAME.match(value):
        raise ValueError(
            "a field is one Salesforce API name (letters, digits, underscores, e.g. "
            "Audit_Phase__c), not SOQL"
        )
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]


class FreshnessWindow(StrictModel):
    """Dagster FreshnessPolicy windows: warn after, fail after (minutes since the last update)."""

    warn_after_minutes: int = Field(gt=0)
    fail_after_minutes: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> FreshnessWindow:
        if self.warn_after_minutes >= self.fail_after_minutes:
            raise ValueError("warn_after_minutes must be below fail_after_minutes")
        return self


class FreshnessWindows(StrictModel):
    raw: FreshnessWindow = FreshnessWindow(warn_after_minutes=120, fail_after_minutes=360)
    dimension: FreshnessWindow = FreshnessWindow(warn_after_minutes=180, fail_after_minutes=480)


class ExtractionOptions(StrictModel):
    # Salesforce accepts REST batch sizes from 200 to 2,000 records.
    page_size: int = Field(default=2000, ge=200, le=2000)
    # auto: Bulk API 2.0 when a COUNT() of what the run reads reaches bulk_threshold, else
    # REST; rest / bulk force one.
    api: Literal["auto", "rest", "bulk"] = "auto"
    bulk_threshold: int = Field(default=10_000, ge=0, description="0: always Bulk (api auto)")
    # Records per Bulk result page (maxRecords): the most the client holds at once.
    bulk_page_size: int = Field(default=50_000, ge=100, le=1_000_000)
    # A value that does not convert to its column's type: `reject` sets the value aside (the
    # version is stored with that column NULL, the value kept as text with the reason in
    # sf_<object>_rejects); `fail` fails the run naming the record, field and value, with the
    # watermark unmoved.
    on_conversion_error: Literal["reject", "fail"] = "reject"
    # A field whose type changed in the org (describe no longer matches the raw column):
    # `widen` gives the column a type holding both (stored rows rewritten with their values
    # cast; the dimension follows the org), `new_column` keeps the column and sends the new
    # values to `<column>__<type>` (nothing rewritten). Announced by the check
    # raw_column_types_unchanged until acknowledged.
    on_type_change: Literal["widen", "new_column"] = "widen"
    # The overall deadline of one extraction of this object (login, every request, retry,
    # backoff, Bulk poll and slow body together): a stalled or trickling server ends the run
    # in this time with one line, nothing appended.
    deadline_seconds: float = Field(default=240, gt=0, le=86_400)
    # The same for one change-sensor tick's question about this object.
    probe_deadline_seconds: float = Field(default=60, gt=0, le=3_600)


class ObjectSpec(StrictModel):
    """One extracted Salesforce object (a file `config/objects/<object>.yml`)."""

    api_name: str = Field(description="Salesforce API name, e.g. User, Opportunity, Invoice__c")
    fields: tuple[FieldName, ...] = Field(
        default=(), description="Always extracted, besides every custom field describe reports"
    )
    cursor: Literal["SystemModstamp", "LastModifiedDate"] = "SystemModstamp"
    lookback_seconds: int = Field(
        default=300, ge=0, description="Re-read this far behind the watermark (ties, commit lag)"
    )
    track: tuple[FieldName, ...] = Field(
        min_length=1, description="A change of any of these starts a new version"
    )
    carry: tuple[FieldName, ...] = Field(
        default=(), description="Also in the dimension, from the latest observation of a version"
    )
    deletions: bool = Field(default=False, description="Extract deleted records (queryAll)")
    id_prefix: str = Field(pattern=r"^[0-9A-Za-z]{3}$", description="Key prefix of the ids")
    freshness: FreshnessWindows = FreshnessWindows()
    extraction: ExtractionOptions = ExtractionOptions()

    @model_validator(mode="after")
    def _consistent(self) -> ObjectSpec:
        if not _API_NAME.match(self.api_name):
            raise ValueError(
                f"api_name {self.api_name!r} is not a Salesforce object API name (e.g. Account, "
                "Invoice_Line__c)"
            )
        if self.deletions and self.api_name in OBJECTS_WITHOUT_DELETIONS:
            raise ValueError(
                f"{self.api_name} records are never deleted in Salesforce (they are "
                "deactivated); set deletions: false"
            )
        both = set(self.track) & set(self.carry)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} is both tracked and carried; keep one")
        columns: dict[str, str] = {}
        for name in (*self.track, *self.carry):
            column = snake_case(name)
            if column in columns and columns[column] != name:
                raise ValueError(f"{columns[column]} and {name} both become column {column!r}")
            columns[column] = name
        reserved = {self.key_column, "scd_id", "is_deleted", "effective_from", "effective_to"}
        clash = reserved & set(columns) | ({"is_current"} & set(columns))
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))} is a column the dimension adds itself")
        return self

    # --- names, all derived from the API name ---------------------------------------------

    @property
    def name(self) -> str:
        """`user`, `opportunity`, `invoice_line`."""
        return snake_case(self.api_name)

    @property
    def raw_asset_key(self) -> tuple[str, str]:
        return (RAW_PREFIX, f"sf_{self.name}")

    @property
    def staging_asset_key(self) -> tuple[str, str]:
        return (STAGING_PREFIX, self.staging_model)

    @property
    def dimension_asset_key(self) -> tuple[str, str]:
        return (CURATED_PREFIX, self.dimension_model)

    @property
    def staging_model(self) -> str:
        return f"stg_sf_{self.name}"

    @property
    def dimension_model(self) -> str:
        return f"dim_sf_{self.name}_scd"

    @property
    def key_column(self) -> str:
        """The record id's column in the dimension: `user_id`."""
        return f"{self.name}_id"

    @property
    def job_name(self) -> str:
        return f"sf_{self.name}_pipeline"

    # --- fields and columns ----------------------------------------------------------------

    @property
    def extracted_fields(self) -> tuple[str, ...]:
        """The listed fields, then Id, the cursor, the tracked and carried fields, once each."""
        wanted = [*self.fields, *REQUIRED_FIELDS, self.cursor, *self.track, *self.carry]
        if self.deletions:
            wanted.append(DELETED_FIELD)
        seen: dict[str, str] = {}
        for field_name in wanted:
            seen.setdefault(field_name.lower(), field_name)
        return tuple(seen.values())

    @property
    def tracked_columns(self) -> tuple[str, ...]:
        return tuple(snake_case(f) for f in self.track)

    @property
    def carried_columns(self) -> tuple[str, ...]:
        return tuple(snake_case(f) for f in self.carry)

    @property
    def dimension_columns(self) -> tuple[str, ...]:
        deleted = ("is_deleted",) if self.deletions else ()
        return (
            "scd_id",
            self.key_column,
            *self.carried_columns,
            *self.tracked_columns,
            *deleted,
            "effective_from",
            "effective_to",
            "is_current",
        )


def raw_column(field_name: str) -> str:
    """Raw tables keep the API names, lower-cased."""
    return field_name.lower()


def load_object_spec(path: Path) -> ObjectSpec:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}:{line} is not valid YAML ({getattr(error, 'problem', error)}); fix the syntax"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the object spec ({error.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (api_name, track, ...)")
    try:
        spec = ObjectSpec.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, path, "", ObjectSpec)) from None
    expected = f"{spec.name}.yml"
    if path.name != expected:
        raise ConfigError(f"{path}: the spec of {spec.api_name} must be named {expected}")
    return spec


def load_object_specs(directory: Path) -> tuple[ObjectSpec, ...]:
    """Every `*.yml` of the directory, in file-name order."""
    if not directory.is_dir():
        raise ConfigError(
            f"object specs directory {directory} does not exist; add one YAML file per object "
            "(sf-lakehouse add-object writes them)"
        )
    specs = tuple(load_object_spec(p) for p in sorted(directory.glob("*.yml")))
    if not specs:
        raise ConfigError(f"{directory} holds no object spec (*.yml); add one per object")
    names: dict[str, str] = {}
    for spec in specs:
        if spec.name in names:
            raise ConfigError(
                f"{directory}: {names[spec.name]} and {spec.api_name} share the table name "
                f"sf_{spec.name}; remove one"
            )
        names[spec.name] = spec.api_name
    return specs
