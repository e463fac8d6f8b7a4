"""CAP 1.2 export: warning lifecycle events → OASIS Common Alerting Protocol messages.

Spec: *Common Alerting Protocol Version 1.2*, OASIS Standard, 1 July 2010 (CAP-v1.2-os),
section 3.2 (document object model) and 3.3 (data dictionary); schema ``CAP-v1.2.xsd``.

One warning is one chain of messages sharing ``<incidents>`` (the warning id):

- ``raised`` → ``Alert``; ``escalated`` / ``deescalated`` / ``updated`` → ``Update``;
  ``cleared`` → ``Update`` with ``responseType`` ``AllClear``, ``urgency`` ``Past`` and a
  short ``expires`` (the all-clear practice of Google Public Alerts' CAP guidelines, "Update
  with responseType AllClear and expires a short time in the future"; CAP 1.2 has no
  all-clear ``msgType``); ``cancelled`` (withdrawn, e.g. a false alarm) → ``Cancel`` with an
  ``<info>`` that explains it (responseType None, urgency Past, severity Unknown, certainty
  Unlikely, as in the NWS tsunami-cancellation example of the same guidelines).
- Every ``Update`` / ``Cancel`` lists in ``<references>`` *all* earlier messages of the same
  warning as ``sender,identifier,sent``, separated by spaces (3.3.1 ``references``).
- ``status`` comes from the run mode (:func:`cap_status`): ``Exercise`` in drills (the
  exercise identifier — the run id — goes in ``<note>``, as 3.3.1 ``status`` asks), ``Test``
  in what-if and replay, ``Actual`` only for a live deployment that says so explicitly.
- Identifiers are ``citytwin.<mode>.<run>.<warning>.<seq>``: deterministic (no wall clock,
  no random UUID), unique per run, free of spaces, commas, ``<`` and ``&`` (3.3.1).
- Times are ``YYYY-MM-DDThh:mm:ss±hh:mm`` in the anchor's time zone, whole seconds, never
  ``Z``; UTC is written ``-00:00`` (3.3.1 ``sent``: "Alphabetic timezone designators such as
  "Z" MUST NOT be used. The timezone for UTC MUST be represented as "-00:00"").

Validation (:func:`validate_cap`) uses two layers: the official XSD through ``xmlschema`` when
the schema file is available (an explicit path, ``$CITYTWIN_CAP_XSD``, or
``../shared/reference/cap/CAP-v1.2.xsd`` beside the repository — the XSD is an OASIS
artefact and is not shipped with citytwin), and always :func:`check_cap_structure`, our own
re-implementation of the schema's element order, cardinality, enumerations and date-time
pattern *plus* the section-3 rules the XSD leaves as ``xs:string`` (identifier characters,
``references`` format, polygon / circle syntax and WGS 84 ranges).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from citytwin.alerting.events import CLOSING

if TYPE_CHECKING:
    import xmlschema

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
CAP_XSD_ENV = "CITYTWIN_CAP_XSD"

# --------------------------------------------------------------------------------------------
# Mapping tables (module level so a city can read — and a profile can override — them)
# --------------------------------------------------------------------------------------------

#: Run mode → ``<status>`` (3.3.1). ``Actual`` only with ``allow_actual`` (live deployments).
STATUS_BY_MODE: dict[str, str] = {
    "drill": "Exercise", "what-if": "Test", "replay": "Test", "live": "Actual",
}

#: Warning lifecycle event → ``<msgType>`` (3.3.1).
MSG_TYPE_BY_EVENT: dict[str, str] = {
    "raised": "Alert", "escalated": "Update", "deescalated": "Update", "updated": "Update",
    "cleared": "Update", "cancelled": "Cancel",
}

#: ``<severity>`` by a level's rank from the most severe level (rank 0 = red = Extreme). A
#: 3-level rulebook uses the first three entries, a 4-level one all four (3.3.2 severity).
SEVERITY_FROM_TOP: tuple[str, ...] = ("Extreme", "Severe", "Moderate", "Minor")

class HazardCapInfo(Protocol):
    """How warnings of one hazard read in CAP (3.3.2): ``categories`` (``<category>``
    values), ``event`` (``<event>`` text), ``public_responses`` (public ``<responseType>`` by
    level rank from the top: Extreme, Severe, Moderate, Minor) and ``instruction`` (what
    people should do). Declared by each hazard's own module (``physics/<kind>.py``) or, for
    hazards without one, in the rulebook's ``hazard_info``; alerting only reads it."""

    categories: Sequence[str]
    event: str
    public_responses: Sequence[str]
    instruction: str


#: Departmental (Restricted) warnings: the audience runs its pre-planned response.
DEPARTMENT_RESPONSE_FROM_TOP: tuple[str, ...] = ("Execute", "Execute", "Prepare", "Monitor")

#: Seconds an all-clear stays current when the input gives no ``expires_s``.
ALL_CLEAR_EXPIRES_S = 3600.0

# CAP 1.2 enumerations (3.3.1 / 3.3.2, identical to the XSD's).
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
              "Transport", "Infra", "CBRNE", "Other")
RESPONSE_TYPES = ("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess",
                  "AllClear", "None")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

_EVENTS = tuple(MSG_TYPE_BY_EVENT)
_BAD_ID_CHARS = re.compile(r"[\s,<&]")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[-+]\d{2}:\d{2}$")
_LANGUAGE_RE = re.compile(r"^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class CapValidationError(ValueError):
    """A CAP message broke the schema or the CAP 1.2 rules; ``errors`` lists every finding."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("invalid CAP 1.2 message:\n  - " + "\n  - ".join(self.errors))


# --------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------

def cap_scope(item: CapInput) -> str:
    """``<scope>`` (3.3.1): ``Public`` for a public warning, else ``Restricted`` (the
    recipient units only)."""
    return "Public" if item.public else "Restricted"


def cap_status(mode: str, allow_actual: bool = False) -> str:
    """``<status>`` for a run mode (3.3.1): drill → Exercise, what-if / replay → Test.

    ``live`` gives ``Actual`` only with ``allow_actual=True``; a simulation never does,
    whatever ``allow_actual`` says.
    """
    if mode not in STATUS_BY_MODE:
        raise ValueError(f"mode: unknown run mode {mode!r}; expected one of "
                         f"{', '.join(STATUS_BY_MODE)}")
    status = STATUS_BY_MODE[mode]
    if status == "Actual" and not allow_actual:
        raise ValueError("mode 'live': status Actual is refused unless allow_actual=True "
                         "(only a live deployment may send real warnings)")
    return status


def _check_cap_token(value: str, what: str) -> None:
    if not value or _BAD_ID_CHARS.search(value):
        raise ValueError(f"{what}: {value!r} is not a valid CAP {what} (must be non-empty, "
                         "without spaces, commas, '<' or '&'; CAP 1.2 §3.3.1)")


@dataclass(frozen=True)
class CapContext:
    """What every message of a run shares.

    ``sender`` identifies the originator (3.3.1: globally unique, e.g. ``citytwin@<city>``; no
    spaces, commas, ``<`` or ``&``). ``anchor`` is the tz-aware wall clock of scenario t = 0;
    ``crs`` the twin's projected CRS (warning areas arrive in it as WKT).
    """

    sender: str
    mode: str
    anchor: datetime
    crs: str | pyproj.CRS
    run_id: str
    allow_actual: bool = False
    language: str = "en-US"
    sender_name: str = "citytwin"
    #: hazard name → how its warnings read (every hazard the run's rulebook warns of)
    hazards: Mapping[str, HazardCapInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_cap_token(self.sender, "sender")
        cap_status(self.mode, self.allow_actual)  # refuses Actual from a simulation now
        if self.anchor.tzinfo is None or self.anchor.utcoffset() is None:
            raise ValueError(f"anchor: {self.anchor.isoformat()} has no time zone; CAP times "
                             "carry an offset (give e.g. 2026-06-01T05:30:00+08:00)")
        if not self.run_id:
            raise ValueError("run_id: must not be empty")
        if not _LANGUAGE_RE.match(self.language):
            raise ValueError(f"language: {self.language!r} is not an RFC 3066 tag")
        object.__setattr__(self, "crs", pyproj.CRS.from_user_input(self.crs))

    @property
    def status(self) -> str:
        """The ``<status>`` of every message of this run."""
        return cap_status(self.mode, self.allow_actual)

    def hazard(self, name: str) -> HazardCapInfo:
        """How warnings of ``name`` read; KeyError naming it and the described hazards."""
        try:
            return self.hazards[name]
        except KeyError:
            raise KeyError(f"no CAP description of hazard {name!r} (described: "
                           f"{', '.join(sorted(self.hazards)) or 'none'}); register its "
                           "physics module or describe it in the rulebook's hazard_info"
                           ) from None


@dataclass(frozen=True)
class CapInput:
    """One warning lifecycle event, as the engine reports it.

    ``level`` counts from 1 (least severe) to ``n_levels`` (3 or 4); a ``cleared`` or
    ``cancelled`` event may carry level 0. Times are seconds from the context's anchor;
    ``area_wkt`` is in the twin CRS ("" or an empty geometry for no area).
    """

    warning_id: str
    event: str
    time_s: float
    hazard: str
    level: int
    level_name: str
    n_levels: int
    headline: str
    description: str
    instruction: str
    area_wkt: str
    area_desc: str
    targets: tuple[str, ...]
    population: int
    recipients: tuple[str, ...]
    public: bool
    certainty: str = "Observed"
    onset_s: float | None = None
    expires_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "recipients", tuple(self.recipients))
        where = f"warning {self.warning_id!r}"
        if not self.warning_id:
            raise ValueError("warning_id: must not be empty")
        if self.event not in _EVENTS:
            raise ValueError(f"{where}: event {self.event!r} is not one of {', '.join(_EVENTS)}")
        if self.n_levels not in (3, 4):
            raise ValueError(f"{where}: n_levels must be 3 or 4, got {self.n_levels}")
        low = 0 if self.event in CLOSING else 1
        if not low <= self.level <= self.n_levels:
            raise ValueError(f"{where}: level {self.level} outside {low}..{self.n_levels} "
                             f"for a {self.event!r} event")
        if self.certainty not in CERTAINTIES:
            raise ValueError(f"{where}: certainty {self.certainty!r} is not one of "
                             f"{', '.join(CERTAINTIES)}")
        for name in ("time_s", "onset_s", "expires_s"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{where}: {name} must be finite, got {value}")
        if self.expires_s is not None and self.expires_s < self.time_s:
            raise ValueError(f"{where}: expires_s {self.expires_s} is before time_s "
                             f"{self.time_s}")
        if self.population < 0:
            raise ValueError(f"{where}: population must be >= 0, got {self.population}")


@dataclass(frozen=True)
class CapMessage:
    """One CAP 1.2 message as sent: its identity, the earlier messages it references, XML
    (``status`` and ``scope`` are the values of its ``<status>`` and ``<scope>``)."""

    identifier: str
    msg_type: str
    sent: datetime
    references: tuple[str, ...]
    xml: bytes
    warning_id: str
    status: str
    scope: str


# --------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------

def cap_datetime(dt: datetime) -> str:
    """CAP 1.2 date-time (3.3.1 ``sent``): ``2026-07-01T05:35:10+08:00``; UTC as ``-00:00``.

    Fractional seconds are dropped; ``Z`` is never written.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError(f"{dt.isoformat()}: a CAP date-time needs a time zone")
    total = int(offset.total_seconds())
    if total % 60:
        raise ValueError(f"{dt.isoformat()}: UTC offset {offset} is not whole minutes")
    sign = "+" if total > 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}{sign}{hours:02d}:{minutes:02d}")


def _wall_clock(anchor: datetime, t_s: float) -> datetime:
    """anchor + t_s in the anchor's zone, rounded up to whole seconds (never before the event).

    The arithmetic is done in UTC so a DST change inside the run shifts the offset, not the
    instant.
    """
    whole = math.ceil(t_s - 1e-6)
    instant = anchor.astimezone(UTC) + timedelta(seconds=whole)
    return instant.astimezone(anchor.tzinfo).replace(microsecond=0)


# --------------------------------------------------------------------------------------------
# Areas
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _to_wgs84(crs_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(crs_wkt), pyproj.CRS.from_epsg(4326),
                                       always_xy=True)


def _exteriors(geom: BaseGeometry) -> list[Polygon]:
    """The polygonal parts of a geometry as hole-free polygons, in input order."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        poly = Polygon(geom.exterior)
        if not poly.is_valid:
            return _exteriors(shapely.make_valid(poly))
        return [poly] if poly.area > 0 else []
    if isinstance(geom, MultiPolygon) or geom.geom_type == "GeometryCollection":
        out: list[Polygon] = []
        for part in geom.geoms:
            if geom.geom_type == "GeometryCollection" and part.geom_type not in (
                    "Polygon", "MultiPolygon", "GeometryCollection"):
                continue  # make_valid can leave slivers as lines / points
            out.extend(_exteriors(part))
        return out
    raise ValueError(f"area: a {geom.geom_type} has no area; CAP areas are polygons")


def _fit_vertices(poly: Polygon, max_vertices: int) -> Polygon:
    """Simplify until the closed ring has at most ``max_vertices`` coordinate pairs.

    Conservative: the polygon is grown by the tolerance before Douglas–Peucker, so the result
    covers the original (within rounding) — a warning area is never cut short.
    """
    if len(poly.exterior.coords) <= max_vertices:
        return poly
    minx, miny, maxx, maxy = poly.bounds
    tol = max(maxx - minx, maxy - miny) * 1e-3
    for _ in range(60):
        grown = poly.buffer(tol, join_style="mitre", mitre_limit=3.0)
        cand = shapely.simplify(grown, tol, preserve_topology=True)
        if isinstance(cand, Polygon) and len(cand.exterior.coords) <= max_vertices:
            return Polygon(cand.exterior)
        tol *= 1.5
    return shapely.oriented_envelope(poly)  # pragma: no cover - 60 rounds always suffice


def area_polygons_latlon(area_wkt: str, crs: str | pyproj.CRS,
                         max_vertices: int = 100) -> list[str]:
    """CAP ``<polygon>`` strings for an area given as WKT in the twin CRS (3.3.4 ``polygon``).

    Each string is space-separated ``lat,lon`` pairs — latitude first, WGS 84, 6 decimals
    (~0.1 m) — closed (first pair == last pair), at least 4 pairs, counter-clockwise in
    (lon, lat), and at most ``max_vertices`` pairs (simplified conservatively in metres when
    longer). A MultiPolygon gives one string per part. CAP polygons have no holes, so holes
    are dropped: the hole is inside the warning area. An empty area gives ``[]`` (an
    ``<area>`` with only ``<areaDesc>`` is valid CAP). Parts that collapse below 4 distinct
    pairs after rounding (smaller than ~0.1 m) are left out.
    """
    if max_vertices < 4:
        raise ValueError(f"max_vertices must be >= 4 (a CAP polygon has 4 pairs), "
                         f"got {max_vertices}")
    if not area_wkt or not area_wkt.strip():
        return []
    geom = shapely.force_2d(shapely.from_wkt(area_wkt))
    transformer = _to_wgs84(pyproj.CRS.from_user_input(crs).to_wkt())
    out: list[str] = []
    for part in _exteriors(geom):
        ring = np.asarray(_fit_vertices(part, max_vertices).exterior.coords)
        lon, lat = transformer.transform(ring[:, 0], ring[:, 1])
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
            raise ValueError("area: coordinates fall outside the CRS's valid region "
                             "(transform to WGS 84 gave non-finite values)")
        signed = np.sum(lon[:-1] * lat[1:] - lon[1:] * lat[:-1])
        if signed < 0:
            lon, lat = lon[::-1], lat[::-1]
        pairs: list[str] = []
        for la, lo in zip(np.round(lat, 6) + 0.0, np.round(lon, 6) + 0.0, strict=True):
            pair = f"{la:.6f},{lo:.6f}"
            if not pairs or pairs[-1] != pair:
                pairs.append(pair)
        if pairs[0] != pairs[-1]:
            pairs.append(pairs[0])
        if len(set(pairs)) >= 3 and len(pairs) >= 4:
            out.append(" ".join(pairs))
    return out


def parse_cap_polygon(text: str) -> list[tuple[float, float]]:
    """``(lat, lon)`` pairs of a CAP ``<polygon>`` string (no range checks)."""
    out = []
    for pair in text.split():
        lat, lon = pair.split(",")
        out.append((float(lat), float(lon)))
    return out


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------

def _token(text: str) -> str:
    """Identifier-safe form of a name: ASCII letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _clean(text: str) -> str:
    """Text safe for XML 1.0: no control characters, ``\\n`` line ends."""
    return _XML_INVALID.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = _clean(text)
    return el


def severity_for(level: int, n_levels: int) -> str:
    """``<severity>`` by rank from the most severe level; level 0 (no warning) → Minor."""
    if level == 0:
        return "Minor"
    return SEVERITY_FROM_TOP[n_levels - level]


def response_types_for(item: CapInput, info: HazardCapInfo) -> tuple[str, ...]:
    """``<responseType>`` values for an event: by audience, the hazard (``info``) and
    level (3.3.2)."""
    if item.event == "cleared":
        return ("AllClear",)
    if item.event == "cancelled":
        return ("None",)
    rank = item.n_levels - item.level
    if not item.public:
        return (DEPARTMENT_RESPONSE_FROM_TOP[rank],)
    return (info.public_responses[rank],)


def urgency_for(item: CapInput) -> str:
    """``<urgency>``: Past once closed; Immediate when observed; else Expected, or Future when
    the expected onset is more than an hour away (3.3.2: Expected = "within next hour")."""
    if item.event in CLOSING:
        return "Past"
    if item.certainty == "Observed":
        return "Immediate"
    if item.onset_s is not None and item.onset_s - item.time_s > 3600.0:
        return "Future"
    return "Expected"


@dataclass
class _History:
    messages: list[CapMessage] = field(default_factory=list)
    polygons: list[str] = field(default_factory=list)
    last_time_s: float = -math.inf
    closed: bool = False


class CapPublisher:
    """Turns warning lifecycle events into CAP 1.2 messages, keeping each warning's history.

    Per warning: the first event must be ``raised``; ``cleared`` and ``cancelled`` close it
    (later events for that id are refused); times may not go backwards. A closing event with
    an empty area repeats the last area sent, so recipients see which area is cleared.
    Every message is checked with :func:`check_cap_structure` before it is returned.
    """

    def __init__(self, ctx: CapContext, max_vertices: int = 100) -> None:
        self.ctx = ctx
        self.max_vertices = max_vertices
        self._history: dict[str, _History] = {}
        self._identifiers: set[str] = set()

    def history(self, warning_id: str) -> tuple[CapMessage, ...]:
        """Messages sent so far for one warning, in order."""
        hist = self._history.get(warning_id)
        return tuple(hist.messages) if hist else ()

    def publish(self, item: CapInput) -> CapMessage:
        """Build, check and record the CAP message for one lifecycle event."""
        hist = self._history.get(item.warning_id)
        where = f"warning {item.warning_id!r}"
        if hist is None:
            if item.event != "raised":
                raise ValueError(f"{where}: first event must be 'raised', got {item.event!r}")
            hist = _History()
        elif item.event == "raised":
            raise ValueError(f"{where}: already raised")
        elif hist.closed:
            raise ValueError(f"{where}: already closed (cleared or cancelled); "
                             f"{item.event!r} refused")
        if item.time_s < hist.last_time_s:
            raise ValueError(f"{where}: time_s {item.time_s} is before the previous event "
                             f"({hist.last_time_s})")
        ctx = self.ctx
        seq = len(hist.messages) + 1
        identifier = (f"citytwin.{_token(ctx.mode)}.{_token(ctx.run_id)}."
                      f"{_token(item.warning_id)}.{seq:03d}")
        if identifier in self._identifiers:
            raise ValueError(f"{where}: identifier {identifier} already used (warning ids "
                             "that differ only in spaces or punctuation collide)")
        polygons = area_polygons_latlon(item.area_wkt, ctx.crs, self.max_vertices)
        if not polygons and item.event in CLOSING:
            polygons = list(hist.polygons)
        sent = _wall_clock(ctx.anchor, item.time_s)
        references = tuple(f"{ctx.sender},{m.identifier},{cap_datetime(m.sent)}"
                           for m in hist.messages)
        msg_type = MSG_TYPE_BY_EVENT[item.event]
        xml = self._xml(item, identifier, msg_type, sent, references, polygons)
        errors = check_cap_structure(xml)
        if errors:
            raise CapValidationError(errors)
        message = CapMessage(identifier=identifier, msg_type=msg_type, sent=sent,
                             references=references, xml=xml, warning_id=item.warning_id,
                             status=self.ctx.status, scope=cap_scope(item))
        hist.messages.append(message)
        if polygons:
            hist.polygons = polygons
        hist.last_time_s = item.time_s
        hist.closed = item.event in CLOSING
        self._history[item.warning_id] = hist
        self._identifiers.add(identifier)
        return message

    def _note(self, status: str) -> str | None:
        ctx = self.ctx
        if status == "Exercise":
            return (f"Exercise {ctx.run_id}: citytwin drill on a simulated city; "
                    "not a real emergency.")
        if status == "Test":
            return (f"Test: citytwin {ctx.mode} simulation, run {ctx.run_id}; "
                    "not a real emergency, disregard.")
        return None

    def _xml(self, item: CapInput, identifier: str, msg_type: str, sent: datetime,
             references: tuple[str, ...], polygons: list[str]) -> bytes:
        ctx = self.ctx
        status = ctx.status
        hazard = ctx.hazard(item.hazard)
        alert = ET.Element(f"{{{CAP_NS}}}alert")
        _sub(alert, "identifier", identifier)
        _sub(alert, "sender", ctx.sender)
        _sub(alert, "sent", cap_datetime(sent))
        _sub(alert, "status", status)
        _sub(alert, "msgType", msg_type)
        _sub(alert, "source", f"citytwin {ctx.mode} run {ctx.run_id}")
        _sub(alert, "scope", cap_scope(item))
        if not item.public:
            units = ", ".join(item.recipients) or "the responsible units"
            _sub(alert, "restriction", f"Departmental warning for {units} only; "
                                       "not for public dissemination.")
        note = self._note(status)
        if note:
            _sub(alert, "note", note)
        if references:
            _sub(alert, "references", " ".join(references))
        _sub(alert, "incidents", _token(item.warning_id))

        info = _sub(alert, "info")
        _sub(info, "language", ctx.language)
        for category in hazard.categories:
            _sub(info, "category", category)
        _sub(info, "event", hazard.event)
        for response in response_types_for(item, hazard):
            _sub(info, "responseType", response)
        _sub(info, "urgency", urgency_for(item))
        if item.event == "cancelled":
            severity, certainty = "Unknown", "Unlikely"
        else:
            severity, certainty = severity_for(item.level, item.n_levels), item.certainty
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        if item.onset_s is not None:
            _sub(info, "onset", cap_datetime(_wall_clock(ctx.anchor, item.onset_s)))
        expires_s = item.expires_s
        if expires_s is None and item.event == "cleared":
            expires_s = item.time_s + ALL_CLEAR_EXPIRES_S
        if expires_s is None and item.event == "cancelled":
            expires_s = item.time_s
        if expires_s is not None:
            _sub(info, "expires", cap_datetime(_wall_clock(ctx.anchor, expires_s)))
        _sub(info, "senderName", ctx.sender_name)
        headline = item.headline or f"{hazard.event} warning: {item.level_name}"
        prefix = {"Exercise": "EXERCISE: ", "Test": "TEST: "}.get(status, "")
        _sub(info, "headline", prefix + headline)
        if item.description:
            _sub(info, "description", item.description)
        instruction = item.instruction or {
            "cleared": "All clear: the hazard no longer poses a threat.",
            "cancelled": "This warning is withdrawn; disregard the earlier messages.",
        }.get(item.event, "")
        if instruction:
            _sub(info, "instruction", instruction)
        params = [
            ("citytwin:warningId", item.warning_id),
            ("citytwin:lifecycleEvent", item.event),
            ("citytwin:level", item.level_name),
            ("citytwin:levelNumber", f"{item.level}/{item.n_levels}"),
            ("citytwin:population", str(int(item.population))),
        ]
        if item.targets:
            params.append(("citytwin:targets", ", ".join(item.targets)))
        if item.recipients:
            params.append(("citytwin:recipients", ", ".join(item.recipients)))
        for name, value in params:
            param = _sub(info, "parameter")
            _sub(param, "valueName", name)
            _sub(param, "value", value)
        area = _sub(info, "area")
        _sub(area, "areaDesc", item.area_desc or f"{hazard.event} warning area")
        for poly in polygons:
            _sub(area, "polygon", poly)

        ET.indent(alert, space="  ")
        body = ET.tostring(alert, encoding="unicode", default_namespace=CAP_NS)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def write_cap_files(messages: Iterable[CapMessage], folder: str | Path) -> list[Path]:
    """Write one ``<identifier>.xml`` per message into ``folder`` (created if needed).

    Each file is written to a temporary name in the same folder and renamed into place, so a
    reader never sees half a message. Duplicate identifiers are refused before anything is
    written.
    """
    messages = list(messages)
    ids = [m.identifier for m in messages]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate CAP identifier(s) {dupes}")
    for ident in ids:
        if _token(ident) != ident:
            raise ValueError(f"identifier {ident!r} is not safe as a file name")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for message in messages:
        path = folder / f"{message.identifier}.xml"
        fd, tmp = tempfile.mkstemp(prefix=f".{message.identifier}.", suffix=".tmp",
                                   dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.xml)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def find_cap_xsd() -> Path | None:
    """The CAP 1.2 XSD to validate against, or None when there is none.

    ``$CITYTWIN_CAP_XSD`` first (an error if it names a missing file), then
    ``../shared/reference/cap/CAP-v1.2.xsd`` beside the repository. citytwin does not ship
    the XSD.
    """
    env = os.environ.get(CAP_XSD_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise FileNotFoundError(f"${CAP_XSD_ENV}={env}: no such file")
        return path
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "cap"
    path = shared / "CAP-v1.2.xsd"
    return path if path.is_file() else None


@lru_cache(maxsize=4)
def _load_xsd(path: str, mtime_ns: int) -> xmlschema.XMLSchema:
    import xmlschema  # imported here: only needed when an XSD is present

    return xmlschema.XMLSchema(path, allow="local")  # never fetch remote resources


def cap_xsd_errors(xml: bytes, xsd_path: str | Path) -> list[str]:
    """Errors of ``xml`` against the XSD at ``xsd_path`` (via ``xmlschema``), [] when valid."""
    path = Path(xsd_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{xsd_path}: CAP XSD not found")
    schema = _load_xsd(str(path), path.stat().st_mtime_ns)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    ns = f"{{{CAP_NS}}}"
    return [f"{err.path or '/'}: {err.reason}".replace(ns, "cap:")
            for err in schema.iter_errors(root)]


def validate_cap(xml: bytes, xsd_path: str | Path | None = None) -> None:
    """Raise :class:`CapValidationError` listing everything wrong with a CAP 1.2 message.

    Always runs :func:`check_cap_structure` (our code: element order, cardinality,
    enumerations, date-times, plus CAP 1.2 section-3 rules the XSD cannot express). Also
    validates against the official XSD with ``xmlschema`` when one is found: ``xsd_path``,
    else :func:`find_cap_xsd`. Without an XSD the structural check is the whole check; it
    mirrors the XSD's structure but does not check the schema's ``xs:anyURI`` / digital
    signature parts.
    """
    errors = check_cap_structure(xml)
    path = Path(xsd_path) if xsd_path is not None else find_cap_xsd()
    if path is not None:
        errors += [f"XSD: {e}" for e in cap_xsd_errors(xml, path)]
    if errors:
        raise CapValidationError(errors)


# The built-in structural check -------------------------------------------------------------

Check = Callable[[ET.Element, str, list[str]], None]
#: (element name, min occurs, max occurs or None for unbounded, check of one occurrence)
Spec = list[tuple[str, int, int | None, Check | None]]


def _q(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _local(tag: str) -> str:
    return tag.split("}", 1)[-1] if isinstance(tag, str) else str(tag)


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()


def _leaf(check: Check | None = None) -> Check:
    def run(el: ET.Element, path: str, errors: list[str]) -> None:
        if len(el):
            errors.append(f"{path}: must hold text only, found <{_local(el[0].tag)}>")
        elif check is not None:
            check(el, path, errors)
    return run


def _enum(values: tuple[str, ...]) -> Check:
    def check(el: ET.Element, path: str, errors: list[str]) -> None:
        if _text(el) not in values:
            errors.append(f"{path}: {_text(el)!r} is not one of {', '.join(values)}")
    return _leaf(check)


def _is_datetime(text: str) -> bool:
    if not _DATETIME_RE.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_datetime(el: ET.Element, path: str, errors: list[str]) -> None:
    if not _is_datetime(_text(el)):
        errors.append(f"{path}: {_text(el)!r} is not a CAP date-time "
                      "(YYYY-MM-DDThh:mm:ss±hh:mm, no 'Z', no fractions)")


def _check_token(el: ET.Element, path: str, errors: list[str]) -> None:
    text = el.text or ""
    if not text or _BAD_ID_CHARS.search(text):
        errors.append(f"{path}: {text!r} must be non-empty, without spaces, commas, "
                      "'<' or '&'")


def _check_references(el: ET.Element, path: str, errors: list[str]) -> None:
    entries = _text(el).split()
    if not entries:
        errors.append(f"{path}: empty")
    for entry in entries:
        parts = entry.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1] or not _is_datetime(parts[2]):
            errors.append(f"{path}: {entry!r} is not sender,identifier,sent")


def _check_language(el: ET.Element, path: str, errors: list[str]) -> None:
    if not _LANGUAGE_RE.match(_text(el)):
        errors.append(f"{path}: {_text(el)!r} is not a language tag")


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(el: ET.Element, path: str, errors: list[str]) -> None:
        if not regex.match(_text(el)):
            errors.append(f"{path}: {_text(el)!r} is not {what}")
    return _leaf(check)


def _latlon(pair: str) -> tuple[float, float] | str:
    parts = pair.split(",")
    if len(parts) != 2:
        return f"{pair!r} is not lat,lon"
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return f"{pair!r} is not lat,lon"
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return f"{pair!r} is not finite"
    if not -90.0 <= lat <= 90.0:
        return f"{pair!r}: latitude {lat} outside [-90, 90] (lat,lon order swapped?)"
    if not -180.0 <= lon <= 180.0:
        return f"{pair!r}: longitude {lon} outside [-180, 180]"
    return lat, lon


def _check_polygon(el: ET.Element, path: str, errors: list[str]) -> None:
    pairs = _text(el).split()
    if len(pairs) < 4:
        errors.append(f"{path}: {len(pairs)} coordinate pairs; CAP needs at least 4")
    points, bad = [], []
    for pair in pairs:
        point = _latlon(pair)
        if isinstance(point, str):
            bad.append(point)
        else:
            points.append(point)
    if bad:
        more = f" (and {len(bad) - 1} more bad pairs)" if len(bad) > 1 else ""
        errors.append(f"{path}: {bad[0]}{more}")
    if len(points) == len(pairs) and pairs and points[0] != points[-1]:
        errors.append(f"{path}: first and last pairs differ (ring not closed)")


def _check_circle(el: ET.Element, path: str, errors: list[str]) -> None:
    parts = _text(el).split()
    if len(parts) != 2:
        errors.append(f"{path}: {_text(el)!r} is not 'lat,lon radius_km'")
        return
    point = _latlon(parts[0])
    if isinstance(point, str):
        errors.append(f"{path}: {point}")
    try:
        radius = float(parts[1])
    except ValueError:
        radius = -1.0
    if not (math.isfinite(radius) and radius >= 0):
        errors.append(f"{path}: radius {parts[1]!r} is not a distance in km")


def _check_area(el: ET.Element, path: str, errors: list[str]) -> None:
    _check_sequence(el, _AREA, path, errors)
    if el.find(_q("ceiling")) is not None and el.find(_q("altitude")) is None:
        errors.append(f"{path}: <ceiling> without <altitude>")


def _group(spec: Spec) -> Check:
    def check(el: ET.Element, path: str, errors: list[str]) -> None:
        _check_sequence(el, spec, path, errors)
    return check


def _check_sequence(el: ET.Element, spec: Spec, path: str, errors: list[str],
                    allow_tail_ns: str | None = None) -> None:
    if (el.text or "").strip():
        errors.append(f"{path}: unexpected text {_text(el)[:40]!r}")
    children = list(el)
    i = 0
    for name, low, high, check in spec:
        n = 0
        while (i < len(children) and children[i].tag == _q(name)
               and (high is None or n < high)):
            if check is not None:
                check(children[i], f"{path}/{name}", errors)
            n += 1
            i += 1
        if n < low:
            errors.append(f"{path}: missing required <{name}>")
    while allow_tail_ns and i < len(children) and \
            children[i].tag.startswith(f"{{{allow_tail_ns}}}"):
        i += 1
    if i < len(children):
        order = ", ".join(s[0] for s in spec)
        errors.append(f"{path}: unexpected <{_local(children[i].tag)}> at child {i + 1} "
                      f"(CAP 1.2 order: {order})")


_PAIR: Spec = [("valueName", 1, 1, _leaf()), ("value", 1, 1, _leaf())]
_RESOURCE: Spec = [
    ("resourceDesc", 1, 1, _leaf()), ("mimeType", 1, 1, _leaf()),
    ("size", 0, 1, _pattern(_INTEGER_RE, "an integer")), ("uri", 0, 1, _leaf()),
    ("derefUri", 0, 1, _leaf()), ("digest", 0, 1, _leaf()),
]
_AREA: Spec = [
    ("areaDesc", 1, 1, _leaf()), ("polygon", 0, None, _leaf(_check_polygon)),
    ("circle", 0, None, _leaf(_check_circle)), ("geocode", 0, None, _group(_PAIR)),
    ("altitude", 0, 1, _pattern(_DECIMAL_RE, "a decimal")),
    ("ceiling", 0, 1, _pattern(_DECIMAL_RE, "a decimal")),
]
_INFO: Spec = [
    ("language", 0, 1, _leaf(_check_language)), ("category", 1, None, _enum(CATEGORIES)),
    ("event", 1, 1, _leaf()), ("responseType", 0, None, _enum(RESPONSE_TYPES)),
    ("urgency", 1, 1, _enum(URGENCIES)), ("severity", 1, 1, _enum(SEVERITIES)),
    ("certainty", 1, 1, _enum(CERTAINTIES)), ("audience", 0, 1, _leaf()),
    ("eventCode", 0, None, _group(_PAIR)), ("effective", 0, 1, _leaf(_check_datetime)),
    ("onset", 0, 1, _leaf(_check_datetime)), ("expires", 0, 1, _leaf(_check_datetime)),
    ("senderName", 0, 1, _leaf()), ("headline", 0, 1, _leaf()),
    ("description", 0, 1, _leaf()), ("instruction", 0, 1, _leaf()), ("web", 0, 1, _leaf()),
    ("contact", 0, 1, _leaf()), ("parameter", 0, None, _group(_PAIR)),
    ("resource", 0, None, _group(_RESOURCE)), ("area", 0, None, _check_area),
]
_ALERT: Spec = [
    ("identifier", 1, 1, _leaf(_check_token)), ("sender", 1, 1, _leaf(_check_token)),
    ("sent", 1, 1, _leaf(_check_datetime)), ("status", 1, 1, _enum(STATUSES)),
    ("msgType", 1, 1, _enum(MSG_TYPES)), ("source", 0, 1, _leaf()),
    ("scope", 1, 1, _enum(SCOPES)), ("restriction", 0, 1, _leaf()),
    ("addresses", 0, 1, _leaf()), ("code", 0, None, _leaf()), ("note", 0, 1, _leaf()),
    ("references", 0, 1, _leaf(_check_references)), ("incidents", 0, 1, _leaf()),
    ("info", 0, None, _group(_INFO)),
]


def check_cap_structure(xml: bytes) -> list[str]:
    """citytwin's built-in CAP 1.2 check (no XSD needed); returns the problems found, [] if none.

    Mirrors ``CAP-v1.2.xsd``: the ``alert`` / ``info`` / ``resource`` / ``area`` sequences
    (order and cardinality), every enumeration, the date-time pattern (no ``Z``, no
    fractions), decimals and integers. Adds CAP 1.2 section-3 rules the XSD leaves to free
    text: identifier and sender without spaces, commas, ``<`` or ``&``; ``references`` as
    ``sender,identifier,sent`` entries, required for Update / Cancel / Ack / Error;
    ``addresses`` required for scope Private; ``polygon`` with ≥ 4 closed ``lat,lon`` pairs in
    WGS 84 range; ``circle`` as ``lat,lon radius``; ``ceiling`` only with ``altitude``. It
    does not check ``xs:anyURI`` syntax or XML-signature content.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != _q("alert"):
        return [f"root element is {root.tag!r}, expected {{{CAP_NS}}}alert"]
    errors: list[str] = []
    _check_sequence(root, _ALERT, "/alert", errors, allow_tail_ns=XMLDSIG_NS)
    msg_type = root.findtext(_q("msgType"), "").strip()
    if msg_type in ("Update", "Cancel", "Ack", "Error") and root.find(_q("references")) is None:
        errors.append(f"/alert: msgType {msg_type} needs <references> to earlier messages")
    if root.findtext(_q("scope"), "").strip() == "Private" and \
            root.find(_q("addresses")) is None:
        errors.append("/alert: scope Private needs <addresses>")
    return errors
