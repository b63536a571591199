"""The emulator's object catalogue: standard objects and their fields, custom objects, describe.

An object's fields are its standard fields (the tables below, with Salesforce's types) plus the
fields seen in its own history, typed by inference (``infer_type``). A custom object (API name
ending ``__c``) has the fields every custom object has (Id, IsDeleted, Name, OwnerId, the audit
dates) plus those of its history. ``describe_field`` and ``object_summary`` render them in the
shapes of ``sobjects/<Object>/describe`` and ``sobjects``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from .history import parse_sf_datetime

__all__ = [
    "STANDARD_OBJECTS",
    "Field",
    "ObjectSpec",
    "custom_object",
    "describe_field",
    "infer_field",
    "infer_type",
    "object_summary",
]

SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}
_LENGTHS = {
    "id": 18,
    "reference": 18,
    "string": 255,
    "picklist": 255,
    "email": 80,
    "phone": 40,
    "url": 255,
    "textarea": 32000,
}
_PRECISION = {"double": (18, 0), "currency": (18, 2), "percent": (3, 0)}
_SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"})


@dataclass(frozen=True)
class Field:
    """One field of an object, as describe reports it."""

    name: str
    type: str  # Salesforce describe type: id, string, reference, picklist, boolean, datetime, ...
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    picklist: tuple[str, ...] = ()
    length: int | None = None  # None: the type's usual length
    label: str | None = None  # None: derived from the name
    unique: bool = False

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")


@dataclass(frozen=True)
class ObjectSpec:
    """An object of the org: its names, key prefix and standard fields."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[Field, ...]

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> Field | None:
        wanted = name.casefold()
        return next((f for f in self.fields if f.name.casefold() == wanted), None)


def _audit() -> tuple[Field, ...]:
    return (
        Field("CreatedDate", "datetime", nillable=False),
        Field("LastModifiedDate", "datetime", nillable=False),
        Field("SystemModstamp", "datetime", nillable=False),
    )


def _owner() -> Field:
    return Field("OwnerId", "reference", nillable=False, reference_to=("User",), label="Owner ID")


ACCOUNT_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
INDUSTRIES = (
    "Banking",
    "Consulting",
    "Education",
    "Energy",
    "Finance",
    "Government",
    "Healthcare",
    "Insurance",
    "Manufacturing",
    "Retail",
    "Technology",
    "Telecommunications",
)
OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
)

STANDARD_OBJECTS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec(
            "User",
            "User",
            "Users",
            "005",
            (
                Field("Id", "id", nillable=False, label="User ID"),
                Field("Username", "string", nillable=False, length=80, unique=True),
                Field("Name", "string", nillable=False, length=121, label="Full Name"),
                Field("FirstName", "string", length=40),
                Field("LastName", "string", nillable=False, length=80),
                Field("Email", "email", nillable=False, length=128),
                Field("IsActive", "boolean", nillable=False, label="Active"),
                Field("Division", "string", length=80),
                Field("Title", "string", length=80),
                Field("Department", "string", length=80),
                Field("ManagerId", "reference", reference_to=("User",), label="Manager ID"),
                Field("LastLoginDate", "datetime"),
                *_audit(),
            ),
        ),
        ObjectSpec(
            "Account",
            "Account",
            "Accounts",
            "001",
            (
                Field("Id", "id", nillable=False, label="Account ID"),
                Field("IsDeleted", "boolean", nillable=False, label="Deleted"),
                Field("Name", "string", nillable=False, label="Account Name"),
                Field("Type", "picklist", picklist=ACCOUNT_TYPES, label="Account Type"),
                Field("Industry", "picklist", picklist=INDUSTRIES),
                Field("BillingCountry", "string", length=80),
                Field("Phone", "phone", label="Account Phone"),
                Field("Website", "url"),
                _owner(),
                Field("AnnualRevenue", "currency"),
                Field("NumberOfEmployees", "int", label="Employees"),
                *_audit(),
            ),
        ),
        ObjectSpec(
            "Contact",
            "Contact",
            "Contacts",
            "003",
            (
                Field("Id", "id", nillable=False, label="Contact ID"),
                Field("IsDeleted", "boolean", nillable=False, label="Deleted"),
                Field("AccountId", "reference", reference_to=("Account",), label="Account ID"),
                Field("FirstName", "string", length=40),
                Field("LastName", "string", nillable=False, length=80),
                Field("Name", "string", nillable=False, length=121, label="Full Name"),
                Field("Email", "email"),
                Field("Phone", "phone", label="Business Phone"),
                Field("Title", "string", length=128),
                Field("Department", "string", length=80),
                _owner(),
                *_audit(),
            ),
        ),
        ObjectSpec(
            "Opportunity",
            "Opportunity",
            "Opportunities",
            "006",
            (
                Field("Id", "id", nillable=False, label="Opportunity ID"),
                Field("IsDeleted", "boolean", nillable=False, label="Deleted"),
                Field("AccountId", "reference", reference_to=("Account",), label="Account ID"),
                Field("Name", "string", nillable=False, length=120, label="Opportunity Name"),
                Field("StageName", "picklist", nillable=False, picklist=OPPORTUNITY_STAGES),
                Field("Amount", "currency"),
                Field("Probability", "percent", label="Probability (%)"),
                Field("CloseDate", "date", nillable=False),
                _owner(),
                Field("IsClosed", "boolean", nillable=False, label="Closed"),
                Field("IsWon", "boolean", nillable=False, label="Won"),
                *_audit(),
            ),
        ),
    )
}
_PREFIX_OBJECTS = {spec.key_prefix: spec.name for spec in STANDARD_OBJECTS.values()}


def custom_object(name: str, key_prefix: str) -> ObjectSpec:
    """A custom object with the standard fields every custom object has."""
    label = name.removesuffix("__c").replace("_", " ")
    return ObjectSpec(
        name,
        label,
        label + "s",
        key_prefix,
        (
            Field("Id", "id", nillable=False, label="Record ID"),
            Field("IsDeleted", "boolean", nillable=False, label="Deleted"),
            Field("Name", "string", nillable=False, length=80, label=f"{label} Name"),
            _owner(),
            *_audit(),
        ),
    )


# --- fields seen only in a history ------------------------------------------------------------


def _looks_like_datetime(value: str) -> bool:
    if "T" not in value or len(value) < 19:
        return False
    try:
        parse_sf_datetime(value)
    except ValueError:
        return False
    return True


def _looks_like_date(value: str) -> bool:
    if len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _looks_like_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isascii() and value.isalnum()


def infer_type(name: str, values: list[Any]) -> str:
    """Salesforce describe type for a field unknown to the catalogue, from its values."""
    if not values:
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "double"
    if all(isinstance(v, str) for v in values):
        if all(_looks_like_datetime(v) for v in values):
            return "datetime"
        if all(_looks_like_date(v) for v in values):
            return "date"
        if name.endswith("Id") and all(_looks_like_id(v) for v in values):
            return "reference"
    return "string"


def infer_field(name: str, values: list[Any], prefixes: dict[str, str] | None = None) -> Field:
    """A field seen in the history: type from its values, referenceTo from the Id prefixes."""
    ftype = infer_type(name, values)
    reference_to: tuple[str, ...] = ()
    if ftype == "reference":
        known = {**_PREFIX_OBJECTS, **(prefixes or {})}
        reference_to = tuple(sorted({known[v[:3]] for v in values if v[:3] in known}))
    return Field(name, ftype, reference_to=reference_to)


def fields_of(
    spec: ObjectSpec, seen: Iterable[tuple[str, list[Any]]], prefixes: dict[str, str]
) -> tuple[Field, ...]:
    """The spec's standard fields, then each field seen in the history (first seen first)."""
    fields = list(spec.fields)
    for name, values in seen:
        if spec.field(name) is None:
            fields.append(infer_field(name, values, prefixes))
    return tuple(fields)


# --- describe shapes --------------------------------------------------------------------------


def _label(name: str) -> str:
    """``Audit_Phase__c`` -> ``Audit Phase``; ``SystemModstamp`` -> ``System Modstamp``."""
    base = name.removesuffix("__c").replace("_", " ")
    if base.endswith("Id") and not name.endswith("__c"):
        base = base[:-2] + " ID"
    words: list[str] = []
    for i, ch in enumerate(base):
        if ch.isupper() and i and base[i - 1].islower():
            words.append(" ")
        words.append(ch)
    return "".join(words).strip()


def describe_field(field: Field) -> dict[str, Any]:
    """One entry of a describe's ``fields`` array."""
    ftype, name = field.type, field.name
    length = field.length if field.length is not None else _LENGTHS.get(ftype, 0)
    precision, scale = _PRECISION.get(ftype, (0, 0))
    audit = name in _SYSTEM_FIELDS
    relationship = None
    if ftype == "reference":
        relationship = name[:-3] + "__r" if field.custom else name.removesuffix("Id")
    return {
        "name": name,
        "label": field.label or _label(name),
        "type": ftype,
        "soapType": SOAP_TYPES.get(ftype, "xsd:string"),
        "custom": field.custom,
        "nillable": field.nillable and ftype != "boolean",
        "length": length,
        "byteLength": length * 3,
        "precision": precision,
        "scale": scale,
        "digits": 9 if ftype == "int" else 0,
        "filterable": ftype != "textarea",
        "sortable": ftype != "textarea",
        "groupable": ftype not in ("datetime", "double", "currency", "percent", "textarea"),
        "createable": not audit,
        "updateable": not audit,
        "calculated": False,
        "unique": field.unique,
        "externalId": False,
        "idLookup": ftype == "id" or field.unique,
        "defaultValue": False if ftype == "boolean" else None,
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in field.picklist
        ],
        "referenceTo": list(field.reference_to),
        "relationshipName": relationship,
    }


def object_summary(spec: ObjectSpec, version_part: str) -> dict[str, Any]:
    """One entry of ``sobjects`` (and the head of a describe)."""
    prefix = f"/services/data/{version_part}/sobjects/{spec.name}"
    return {
        "name": spec.name,
        "label": spec.label,
        "labelPlural": spec.label_plural,
        "keyPrefix": spec.key_prefix,
        "custom": spec.custom,
        "customSetting": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "replicateable": True,
        "layoutable": True,
        "createable": False,
        "updateable": False,
        "deletable": False,
        "undeletable": False,
        "deprecatedAndHidden": False,
        "urls": {
            "sobject": prefix,
            "describe": f"{prefix}/describe",
            "rowTemplate": f"{prefix}/{{ID}}",
        },
    }
