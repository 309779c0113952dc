"""Typed models of ESPI resources (espi.xsd and customer.xsd, ESPI 4.0).

Plain dataclasses: the XML mapping lives in :mod:`espi.reader` and the writer, not on the classes.
Fields are declared in schema order and named in snake_case; the XML element name is derived
(``bill_last_period`` -> ``billLastPeriod``) unless the field's metadata names it (``xml("...")``).
Fields whose metadata has ``"xml": None`` are not XML content: Atom metadata and the object
graph that the reader builds from Atom links (``UsagePoint.meter_readings``, ...).

Times are ESPI ``TimeType``: integer seconds since 1970-01-01 UTC. Properties ending in ``_at``
or named ``start_datetime``/``end_datetime`` give timezone-aware datetimes. Money is an integer
count of 1/100000 of the currency unit, as ESPI keeps it. Values are raw integers together with
the ReadingType's ``power_of_ten_multiplier``; scaled floats only come from the helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from .codes import (
    AccumulationKind,
    AuthorizationStatus,
    CommodityKind,
    CRUDOperation,
    Currency,
    DataCustodianApplicationStatus,
    DataQualifierKind,
    ESPIServiceStatus,
    FlowDirectionKind,
    ItemKind,
    MeasurementKind,
    PhaseCodeKind,
    QualityOfReading,
    ServiceKind,
    StatusCode,
    ThirdPartyApplicationStatus,
    ThirdPartyApplicationType,
    ThirdPartyApplicationUse,
    TimeAttributeKind,
    TimePeriodOfInterest,
    UnitMultiplierKind,
    UnitSymbolKind,
)

__all__ = [
    "COST_SCALE",
    "AcceptanceTest",
    "AccountNotification",
    "AggregateNodeRef",
    "ApplicationInformation",
    "Asset",
    "Authorization",
    "BatchItemInfo",
    "BatchList",
    "BillingChargeSource",
    "Customer",
    "CustomerAccount",
    "CustomerAgreement",
    "CustomerResource",
    "DateTimeInterval",
    "DemandResponseProgram",
    "Document",
    "ElectricPowerQualitySummary",
    "ElectronicAddress",
    "EndDevice",
    "Feed",
    "IntervalBlock",
    "IntervalReading",
    "LifecycleDate",
    "LineItem",
    "Link",
    "LocalTimeParameters",
    "Location",
    "Meter",
    "MeterMultiplier",
    "MeterReading",
    "Object",
    "Organisation",
    "OrganisationRole",
    "PnodeRef",
    "PositionPoint",
    "Priority",
    "ProgramDate",
    "ProgramIdMapping",
    "ProgramIdMappings",
    "RationalNumber",
    "ReadingQuality",
    "ReadingType",
    "Resource",
    "RetailCustomer",
    "ServiceCategory",
    "ServiceDeliveryPoint",
    "ServiceLocation",
    "ServiceStatus",
    "ServiceSupplier",
    "Statement",
    "StatementRef",
    "Status",
    "StreetAddress",
    "StreetDetail",
    "SummaryMeasurement",
    "TariffRiderRef",
    "TelephoneNumber",
    "TownDetail",
    "UsagePoint",
    "UsageSummary",
]

ESPI_NS = "http://naesb.org/espi"
CUSTOMER_NS = "http://naesb.org/espi/customer"
ATOM_NS = "http://www.w3.org/2005/Atom"

#: ESPI money is kept in 1/100000 of the currency unit.
COST_SCALE = 100_000


def xml(name: str | None = None, *, item: str | None = None, **kw: Any) -> Any:
    """A field mapped to the XML element ``name`` (derived from the field name when omitted).

    ``item``: the element is a wrapper whose repeated ``item`` children make up the list.
    """
    meta = {"xml": name or "", "item": item}
    if "default" not in kw and "default_factory" not in kw:
        kw["default"] = None
    return field(metadata=meta, **kw)


def many(name: str | None = None, *, item: str | None = None) -> Any:
    """A repeated element (or wrapper of repeated items), as a list."""
    return field(default_factory=list, metadata={"xml": name or "", "item": item})


def graph(*, back: bool = False, default_list: bool = True) -> Any:
    """Not XML content: links between resources that the reader resolves."""
    kw: dict[str, Any] = {"default_factory": list} if default_list else {"default": None}
    if back:
        kw.update(compare=False, repr=False)
    return field(metadata={"xml": None, "graph": True}, **kw)


def meta() -> Any:
    """Atom metadata: not part of the resource's XML content."""
    return field(default=None, metadata={"xml": None, "atom": True})


def to_datetime(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def norm_href(href: str) -> str:
    """A link target reduced to what identifies it: the path below ``.../resource/``."""
    try:
        path = unquote(urlsplit(href.strip()).path)
    except ValueError:  # not a URL at all ("http://[x/..."): the text as it is
        path = href.strip()
    i = path.rfind("/resource/")
    if i >= 0:
        path = path[i + len("/resource/") :]
    return path.strip("/")


def span_of(readings: Iterator[IntervalReading]) -> str:
    """``count readings, first start to last end`` (UTC), for short reprs."""
    count, first, last = 0, None, None
    for r in readings:
        count += 1
        if r.start is not None:
            first = r.start if first is None else min(first, r.start)
            end = r.start + (r.duration or 0)
            last = end if last is None else max(last, end)
    if first is None or last is None:
        return f"readings={count:,}"
    return (
        f"readings={count:,}, span={to_datetime(first):%Y-%m-%d %H:%M}"
        f"..{to_datetime(last):%Y-%m-%d %H:%M}Z"
    )


# --------------------------------------------------------------------------- Atom envelope


@dataclass(slots=True, kw_only=True)
class Link:
    href: str
    rel: str | None = None
    type: str | None = None


@dataclass(slots=True, kw_only=True)
class Object:
    """Base of every ESPI type: keeps child elements the model does not know, as XML text."""

    extra: list[str] = field(default_factory=list, metadata={"xml": None}, compare=False)


@dataclass(slots=True, kw_only=True)
class BatchItemInfo(Object):
    name: str | None = xml()
    operation: CRUDOperation | None = xml()
    status_code: StatusCode | None = xml()
    status_reason: str | None = xml()


@dataclass(slots=True, kw_only=True)
class Resource(Object):
    """An ESPI resource as carried by an Atom entry, with the entry's metadata."""

    id: str | None = meta()
    title: str | None = meta()
    published: datetime | None = meta()
    updated: datetime | None = meta()
    links: list[Link] = field(default_factory=list, metadata={"xml": None, "atom": True})
    #: The Atom entry's source line in the document it was read from.
    source_line: int | None = field(default=None, compare=False, repr=False, metadata={"xml": None})
    batch_item_info: BatchItemInfo | None = xml()

    def link(self, rel: str) -> str | None:
        """The first link with relation ``rel`` (``self``, ``up``, ``related``)."""
        return next((lk.href for lk in self.links if lk.rel == rel), None)

    def related(self) -> list[str]:
        return [lk.href for lk in self.links if lk.rel == "related"]

    @property
    def key(self) -> str:
        """A short, stable name: the self link's path below ``resource/``, else the Atom id,
        else empty."""
        href = self.link("self")
        return norm_href(href) if href else (self.id or "")


# --------------------------------------------------------------------------- shared parts


@dataclass(slots=True, kw_only=True)
class DateTimeInterval(Object):
    duration: int | None = xml()
    start: int | None = xml()

    @property
    def end(self) -> int | None:
        if self.start is None or self.duration is None:
            return None
        return self.start + self.duration

    @property
    def start_datetime(self) -> datetime | None:
        return to_datetime(self.start)

    @property
    def end_datetime(self) -> datetime | None:
        return to_datetime(self.end)


@dataclass(slots=True, kw_only=True)
class SummaryMeasurement(Object):
    power_of_ten_multiplier: UnitMultiplierKind | None = xml()
    time_stamp: int | None = xml()
    uom: UnitSymbolKind | None = xml()
    value: int | None = xml()
    reading_type_ref: str | None = xml()

    @property
    def quantity(self) -> float | None:
        """The value scaled by its power of ten, in ``uom``."""
        if self.value is None:
            return None
        return self.value * 10.0 ** int(self.power_of_ten_multiplier or 0)


@dataclass(slots=True, kw_only=True)
class RationalNumber(Object):
    numerator: int | None = xml()
    denominator: int | None = xml()


@dataclass(slots=True, kw_only=True)
class ReadingQuality(Object):
    quality: QualityOfReading | None = xml()


@dataclass(slots=True, kw_only=True)
class ServiceCategory(Object):
    kind: ServiceKind | None = xml()


@dataclass(slots=True, kw_only=True)
class TariffRiderRef(Object):
    rider_type: str | None = xml()
    enrollment_status: str | None = xml()
    effective_date: int | None = xml()


@dataclass(slots=True, kw_only=True)
class ServiceDeliveryPoint(Object):
    name: str | None = xml()
    tariff_profile: str | None = xml()
    customer_agreement: str | None = xml()
    tariff_rider_refs: list[TariffRiderRef] = many(item="tariffRiderRef")


@dataclass(slots=True, kw_only=True)
class PnodeRef(Object):
    apnode_type: str | None = xml()
    ref: str | None = xml()
    start_effective_date: int | None = xml()
    end_effective_date: int | None = xml()


@dataclass(slots=True, kw_only=True)
class AggregateNodeRef(Object):
    anode_type: str | None = xml()
    ref: str | None = xml()
    start_effective_date: int | None = xml()
    end_effective_date: int | None = xml()
    pnode_ref: list[PnodeRef] = many()


@dataclass(slots=True, kw_only=True)
class LineItem(Object):
    """One charge of a bill (``costAdditionalDetailLastPeriod``)."""

    amount: int | None = xml()
    rounding: int | None = xml()
    date_time: int | None = xml()
    note: str | None = xml()
    measurement: SummaryMeasurement | None = xml()
    item_kind: ItemKind | None = xml()
    unit_cost: int | None = xml()
    item_period: DateTimeInterval | None = xml()


@dataclass(slots=True, kw_only=True)
class BillingChargeSource(Object):
    agency_name: str | None = xml()


# --------------------------------------------------------------------------- usage resources


@dataclass(slots=True, kw_only=True)
class ReadingType(Resource):
    accumulation_behaviour: AccumulationKind | None = xml()
    commodity: CommodityKind | None = xml()
    consumption_tier: int | None = xml()
    currency: Currency | None = xml()
    data_qualifier: DataQualifierKind | None = xml()
    default_quality: QualityOfReading | None = xml()
    flow_direction: FlowDirectionKind | None = xml()
    interval_length: int | None = xml()
    kind: MeasurementKind | None = xml()
    phase: PhaseCodeKind | None = xml()
    power_of_ten_multiplier: UnitMultiplierKind | None = xml()
    time_attribute: TimePeriodOfInterest | None = xml()
    tou: int | None = xml()
    uom: UnitSymbolKind | None = xml()
    cpp: int | None = xml()
    interharmonic: RationalNumber | None = xml()
    measuring_period: TimeAttributeKind | None = xml()
    argument: RationalNumber | None = xml()

    @property
    def unit(self) -> str:
        """The unit symbol (``Wh``, ``therm``, ``m3``); empty when the file gives none."""
        return self.uom.label if self.uom is not None else ""

    @property
    def scale(self) -> float:
        return 10.0 ** int(self.power_of_ten_multiplier or 0)

    def __repr__(self) -> str:
        power = int(self.power_of_ten_multiplier or 0)
        parts = [repr(self.key), repr(self.unit)] + [f"x10^{power}"] * bool(power)
        parts += [
            f"{name}={value}"
            for name, value in (
                ("interval_length", self.interval_length),
                ("flow_direction", self.flow_direction),
                ("kind", self.kind),
                ("currency", self.currency),
            )
            if value is not None
        ]
        return f"ReadingType({', '.join(parts)})"


@dataclass(slots=True, kw_only=True)
class IntervalReading:
    """One reading. ``start``/``duration`` are the reading's ``timePeriod`` (epoch s, seconds).

    Readings from :func:`espi.iter_readings` carry their block, and through it their meter
    reading, reading type and usage point when the document says which they are.
    """

    start: int | None = None
    duration: int | None = None
    value: int | None = None
    cost: int | None = None
    qualities: tuple[QualityOfReading, ...] = ()
    consumption_tier: int | None = None
    tou: int | None = None
    cpp: int | None = None
    block: IntervalBlock | None = field(default=None, compare=False, repr=False)

    @property
    def meter_reading(self) -> MeterReading | None:
        return self.block.meter_reading if self.block is not None else None

    @property
    def reading_type(self) -> ReadingType | None:
        mr = self.meter_reading
        return mr.reading_type if mr is not None else None

    @property
    def usage_point(self) -> UsagePoint | None:
        mr = self.meter_reading
        return mr.usage_point if mr is not None else None

    @property
    def end(self) -> int | None:
        if self.start is None or self.duration is None:
            return None
        return self.start + self.duration

    @property
    def start_datetime(self) -> datetime | None:
        return to_datetime(self.start)

    @property
    def end_datetime(self) -> datetime | None:
        return to_datetime(self.end)

    @property
    def quantity(self) -> float | None:
        """``value`` scaled by the reading type's power of ten, in :attr:`unit`."""
        if self.value is None:
            return None
        rt = self.reading_type
        return self.value * rt.scale if rt is not None else float(self.value)

    @property
    def unit(self) -> str:
        rt = self.reading_type
        return rt.unit if rt is not None else ""

    @property
    def cost_amount(self) -> float | None:
        """Cost in currency units (``cost`` is in 1/100000 of them)."""
        return None if self.cost is None else self.cost / COST_SCALE


@dataclass(slots=True, kw_only=True)
class IntervalBlock(Resource):
    interval: DateTimeInterval | None = xml()
    #: Empty for blocks seen through :func:`espi.iter_readings`, which streams the readings.
    readings: list[IntervalReading] = many("IntervalReading")
    meter_reading: MeterReading | None = graph(back=True, default_list=False)

    def __repr__(self) -> str:
        return f"IntervalBlock({self.key!r}, {span_of(iter(self.readings))})"


@dataclass(slots=True, kw_only=True)
class MeterReading(Resource):
    reading_type: ReadingType | None = graph(default_list=False)
    #: Empty for meter readings seen through :func:`espi.iter_readings`, which keeps no block
    #: it has handed out (each block still points to its meter reading).
    interval_blocks: list[IntervalBlock] = graph()
    usage_point: UsagePoint | None = graph(back=True, default_list=False)

    def readings(self) -> Iterator[IntervalReading]:
        for block in self.interval_blocks:
            yield from block.readings

    def __repr__(self) -> str:
        rt = self.reading_type
        unit = f", unit={rt.unit!r}" if rt is not None and rt.uom is not None else ""
        blocks = len(self.interval_blocks)
        return f"MeterReading({self.key!r}{unit}, blocks={blocks:,}, {span_of(self.readings())})"


@dataclass(slots=True, kw_only=True)
class UsageSummary(Resource):
    """A bill: ``UsageSummary`` (and the deprecated ``ElectricPowerUsageSummary``)."""

    billing_period: DateTimeInterval | None = xml()
    bill_last_period: int | None = xml()
    bill_to_date: int | None = xml()
    cost_additional_last_period: int | None = xml()
    cost_additional_detail_last_period: list[LineItem] = many()
    currency: Currency | None = xml()
    overall_consumption_last_period: SummaryMeasurement | None = xml()
    current_billing_period_over_all_consumption: SummaryMeasurement | None = xml()
    current_day_last_year_net_consumption: SummaryMeasurement | None = xml()
    current_day_net_consumption: SummaryMeasurement | None = xml()
    current_day_overall_consumption: SummaryMeasurement | None = xml()
    peak_demand: SummaryMeasurement | None = xml()
    previous_day_last_year_overall_consumption: SummaryMeasurement | None = xml()
    previous_day_net_consumption: SummaryMeasurement | None = xml()
    previous_day_overall_consumption: SummaryMeasurement | None = xml()
    quality_of_reading: QualityOfReading | None = xml()
    ratchet_demand: SummaryMeasurement | None = xml()
    ratchet_demand_period: DateTimeInterval | None = xml()
    status_time_stamp: int | None = xml()
    commodity: CommodityKind | None = xml()
    tariff_profile: str | None = xml()
    read_cycle: str | None = xml()
    tariff_rider_refs: list[TariffRiderRef] = many(item="tariffRiderRef")
    billing_charge_source: BillingChargeSource | None = xml()
    usage_point: UsagePoint | None = graph(back=True, default_list=False)
    #: True when the document called it ``ElectricPowerUsageSummary`` (deprecated in ESPI 3.3).
    legacy_element: bool = field(default=False, metadata={"xml": None})


@dataclass(slots=True, kw_only=True)
class ElectricPowerQualitySummary(Resource):
    flicker_plt: int | None = xml()
    flicker_pst: int | None = xml()
    harmonic_voltage: int | None = xml()
    long_interruptions: int | None = xml()
    mains_voltage: int | None = xml()
    measurement_protocol: int | None = xml()
    power_frequency: int | None = xml()
    rapid_voltage_changes: int | None = xml()
    short_interruptions: int | None = xml()
    summary_interval: DateTimeInterval | None = xml()
    supply_voltage_dips: int | None = xml()
    supply_voltage_imbalance: int | None = xml()
    supply_voltage_variations: int | None = xml()
    temp_overvoltage: int | None = xml()
    usage_point: UsagePoint | None = graph(back=True, default_list=False)


@dataclass(slots=True, kw_only=True)
class LocalTimeParameters(Resource):
    """``LocalTimeParameters`` (schema type TimeConfiguration). DST rules are kept as the hex
    strings the file holds; :mod:`espi.timeparams` decodes them."""

    dst_end_rule: str | None = xml()
    dst_offset: int | None = xml()
    dst_start_rule: str | None = xml()
    tz_offset: int | None = xml()


@dataclass(slots=True, kw_only=True)
class UsagePoint(Resource):
    role_flags: str | None = xml()
    service_category: ServiceCategory | None = xml("ServiceCategory")
    status: int | None = xml()
    service_delivery_point: ServiceDeliveryPoint | None = xml()
    ami_billing_ready: str | None = xml()
    check_billing: bool | None = xml()
    connection_state: str | None = xml()
    estimated_load: SummaryMeasurement | None = xml()
    grounded: bool | None = xml()
    is_sdp: bool | None = xml()
    is_virtual: bool | None = xml()
    minimal_usage_expected: bool | None = xml()
    nominal_service_voltage: SummaryMeasurement | None = xml()
    outage_region: str | None = xml()
    phase_code: PhaseCodeKind | None = xml()
    rated_current: SummaryMeasurement | None = xml()
    rated_power: SummaryMeasurement | None = xml()
    read_cycle: str | None = xml()
    read_route: str | None = xml()
    service_delivery_remark: str | None = xml()
    service_priority: str | None = xml()
    pnode_refs: list[PnodeRef] = many(item="pnodeRef")
    aggregate_node_refs: list[AggregateNodeRef] = many(item="aggregateNodeRef")

    meter_readings: list[MeterReading] = graph()
    usage_summaries: list[UsageSummary] = graph()
    power_quality_summaries: list[ElectricPowerQualitySummary] = graph()
    local_time_parameters: LocalTimeParameters | None = graph(default_list=False)

    @property
    def kind(self) -> ServiceKind | None:
        return self.service_category.kind if self.service_category is not None else None

    def readings(self) -> Iterator[IntervalReading]:
        for mr in self.meter_readings:
            yield from mr.readings()

    def __repr__(self) -> str:
        return (
            f"UsagePoint({self.key!r}, kind={self.kind}, "
            f"meter_readings={len(self.meter_readings)}, "
            f"usage_summaries={len(self.usage_summaries)}, {span_of(self.readings())})"
        )


@dataclass(slots=True, kw_only=True)
class ProgramIdMapping(Object):
    t_o_uor_c_p_por_consumption_tier: str | None = xml("tOUorCPPorConsumptionTier")
    code: str | None = xml()
    name: str | None = xml()
    note: str | None = xml()


@dataclass(slots=True, kw_only=True)
class ProgramIdMappings(Resource):
    mappings: list[ProgramIdMapping] = many("programIdMapping")


@dataclass(slots=True, kw_only=True)
class ApplicationInformation(Resource):
    data_custodian_id: str | None = xml()
    data_custodian_application_status: DataCustodianApplicationStatus | None = xml()
    third_party_application_description: str | None = xml()
    third_party_application_status: ThirdPartyApplicationStatus | None = xml()
    third_party_application_type: ThirdPartyApplicationType | None = xml()
    third_party_application_use: ThirdPartyApplicationUse | None = xml()
    third_party_phone: str | None = xml()
    authorization_server_uri: str | None = xml()
    third_party_notify_uri: str | None = xml()
    authorization_server_authorization_endpoint: str | None = xml()
    authorization_server_registration_endpoint: str | None = xml()
    authorization_server_token_endpoint: str | None = xml()
    data_custodian_bulk_request_uri: str | None = xml("dataCustodianBulkRequestURI")
    data_custodian_resource_endpoint: str | None = xml()
    third_party_scope_selection_screen_uri: str | None = xml("thirdPartyScopeSelectionScreenURI")
    third_party_user_portal_screen_uri: str | None = xml("thirdPartyUserPortalScreenURI")
    client_secret: str | None = xml("client_secret")
    logo_uri: str | None = xml("logo_uri")
    client_name: str | None = xml("client_name")
    client_uri: str | None = xml("client_uri")
    redirect_uri: list[str] = many("redirect_uri")
    client_id: str | None = xml("client_id")
    tos_uri: str | None = xml("tos_uri")
    policy_uri: str | None = xml("policy_uri")
    software_id: str | None = xml("software_id")
    software_version: str | None = xml("software_version")
    client_id_issued_at: int | None = xml("client_id_issued_at")
    client_secret_expires_at: int | None = xml("client_secret_expires_at")
    contacts: list[str] = many("contacts")
    token_endpoint_auth_method: str | None = xml("token_endpoint_auth_method")
    scope: list[str] = many("scope")
    grant_types: list[str] = many("grant_types")
    response_types: str | None = xml("response_types")
    registration_client_uri: str | None = xml("registration_client_uri")
    registration_access_token: str | None = xml("registration_access_token")
    data_custodian_scope_selection_screen_uri: str | None = xml(
        "dataCustodianScopeSelectionScreenURI"
    )


@dataclass(slots=True, kw_only=True)
class Authorization(Resource):
    authorized_period: DateTimeInterval | None = xml()
    published_period: DateTimeInterval | None = xml()
    status: AuthorizationStatus | None = xml()
    expires_at: int | None = xml("expires_at")
    grant_type: str | None = xml("grant_type")
    scope: str | None = xml()
    token_type: str | None = xml("token_type")
    error: str | None = xml()
    error_description: str | None = xml("error_description")
    error_uri: str | None = xml("error_uri")
    resource_uri: str | None = xml("resourceURI")
    authorization_uri: str | None = xml("authorizationURI")
    customer_resource_uri: str | None = xml("customerResourceURI")


@dataclass(slots=True, kw_only=True)
class ServiceStatus(Object):
    current_status: ESPIServiceStatus | None = xml()


@dataclass(slots=True, kw_only=True)
class BatchList(Object):
    """The list of resource URIs a data custodian POSTs to a Notification endpoint."""

    resources: list[str] = many()


# --------------------------------------------------------------------------- customer family


@dataclass(slots=True, kw_only=True)
class Status(Object):
    value: str | None = xml()
    date_time: int | None = xml()
    remark: str | None = xml()
    reason: str | None = xml()


@dataclass(slots=True, kw_only=True)
class StreetDetail(Object):
    number: str | None = xml()
    name: str | None = xml()
    suffix: str | None = xml()
    prefix: str | None = xml()
    type: str | None = xml()
    code: str | None = xml()
    building_name: str | None = xml()
    suite_number: str | None = xml()
    address_general: str | None = xml()
    address_general2: str | None = xml("addressGeneral2")
    address_general3: str | None = xml("addressGeneral3")
    within_town_limits: bool | None = xml()


@dataclass(slots=True, kw_only=True)
class TownDetail(Object):
    code: str | None = xml()
    section: str | None = xml()
    name: str | None = xml()
    county: str | None = xml()
    state_or_province: str | None = xml()
    country: str | None = xml()


@dataclass(slots=True, kw_only=True)
class StreetAddress(Object):
    street_detail: StreetDetail | None = xml()
    town_detail: TownDetail | None = xml()
    status: Status | None = xml()
    postal_code: str | None = xml()
    po_box: str | None = xml()


@dataclass(slots=True, kw_only=True)
class TelephoneNumber(Object):
    country_code: str | None = xml()
    area_code: str | None = xml()
    city_code: str | None = xml()
    local_number: str | None = xml()
    ext: str | None = xml()
    dial_out: str | None = xml()
    international_prefix: str | None = xml()
    itu_phone: str | None = xml()


@dataclass(slots=True, kw_only=True)
class ElectronicAddress(Object):
    lan: str | None = xml()
    mac: str | None = xml()
    email1: str | None = xml()
    email2: str | None = xml()
    web: str | None = xml()
    radio: str | None = xml()
    user_id: str | None = xml("userID")
    password: str | None = xml()


@dataclass(slots=True, kw_only=True)
class Organisation(Object):
    street_address: StreetAddress | None = xml()
    postal_address: StreetAddress | None = xml()
    phone1: TelephoneNumber | None = xml()
    phone2: TelephoneNumber | None = xml()
    electronic_address: ElectronicAddress | None = xml()
    organisation_name: str | None = xml()


@dataclass(slots=True, kw_only=True)
class Priority(Object):
    rank: int | None = xml()
    type: str | None = xml()
    justification: str | None = xml()


@dataclass(slots=True, kw_only=True)
class CustomerResource(Resource):
    """Base of the customer-namespace resources (IdentifiedObject in customer.xsd)."""

    name: str | None = xml()


@dataclass(slots=True, kw_only=True)
class OrganisationRole(CustomerResource):
    organisation: Organisation | None = xml("Organisation")


@dataclass(slots=True, kw_only=True)
class Customer(OrganisationRole):
    kind: str | None = xml()
    special_need: str | None = xml()
    vip: bool | None = xml()
    puc_number: str | None = xml()
    status: Status | None = xml()
    priority: Priority | None = xml()
    locale: str | None = xml()
    customer_name: str | None = xml()


@dataclass(slots=True, kw_only=True)
class AccountNotification(Object):
    method_kind: str | None = xml()
    time: int | None = xml()
    note: str | None = xml()
    customer_notification_kind: str | None = xml()


@dataclass(slots=True, kw_only=True)
class Document(CustomerResource):
    type: str | None = xml()
    author_name: str | None = xml()
    created_date_time: int | None = xml()
    last_modified_date_time: int | None = xml()
    revision_number: str | None = xml()
    electronic_address: ElectronicAddress | None = xml()
    subject: str | None = xml()
    title_text: str | None = xml("title")
    doc_status: Status | None = xml()
    status: Status | None = xml()
    comment: str | None = xml()


@dataclass(slots=True, kw_only=True)
class CustomerAccount(Document):
    billing_cycle: str | None = xml()
    budget_bill: str | None = xml()
    last_bill_amount: int | None = xml()
    notifications: list[AccountNotification] = many()
    contact_info: Organisation | None = xml()
    account_id: str | None = xml()


@dataclass(slots=True, kw_only=True)
class ProgramDate(Object):
    program_date: int | None = xml()
    program_date_description: str | None = xml()


@dataclass(slots=True, kw_only=True)
class DemandResponseProgram(Object):
    program_name: str | None = xml()
    enrollment_status: str | None = xml()
    program_description: str | None = xml()
    program_date: list[ProgramDate] = many()
    capacity_reservation_level: SummaryMeasurement | None = xml()
    dr_program_nomination: SummaryMeasurement | None = xml("DRProgramNomination")


@dataclass(slots=True, kw_only=True)
class CustomerAgreement(Document):
    sign_date: int | None = xml()
    validity_interval: DateTimeInterval | None = xml()
    load_mgmt: str | None = xml()
    is_pre_pay: bool | None = xml()
    shut_off_date_time: int | None = xml()
    demand_response_programs: list[DemandResponseProgram] = many("DemandResponseProgram")
    pricing_structures: list[str] = many("PricingStructures")
    currency: str | None = xml()
    future_status: list[Status] = many()
    agreement_id: str | None = xml()


@dataclass(slots=True, kw_only=True)
class PositionPoint(Object):
    x_position: str | None = xml()
    y_position: str | None = xml()
    z_position: str | None = xml()


@dataclass(slots=True, kw_only=True)
class Location(CustomerResource):
    type: str | None = xml()
    main_address: StreetAddress | None = xml()
    secondary_address: StreetAddress | None = xml()
    phone1: TelephoneNumber | None = xml()
    phone2: TelephoneNumber | None = xml()
    electronic_address: ElectronicAddress | None = xml()
    geo_info_reference: str | None = xml()
    direction: str | None = xml()
    status: Status | None = xml()
    position_points: list[PositionPoint] = many()


@dataclass(slots=True, kw_only=True)
class ServiceLocation(Location):
    """customer.xsd: ServiceLocation extends WorkLocation extends Location."""

    access_method: str | None = xml()
    site_access_problem: str | None = xml()
    needs_inspection: bool | None = xml()
    usage_points: list[str] = many("UsagePoints", item="UsagePoint")
    outage_block: str | None = xml()


@dataclass(slots=True, kw_only=True)
class MeterMultiplier(Object):
    kind: str | None = xml()
    value: float | None = xml()


@dataclass(slots=True, kw_only=True)
class LifecycleDate(Object):
    manufactured_date: int | None = xml()
    purchase_date: int | None = xml()
    received_date: int | None = xml()
    installation_date: int | None = xml()
    removal_date: int | None = xml()
    retired_date: int | None = xml()


@dataclass(slots=True, kw_only=True)
class AcceptanceTest(Object):
    type: str | None = xml()
    success: bool | None = xml()
    date_time: int | None = xml()


@dataclass(slots=True, kw_only=True)
class Asset(CustomerResource):
    type: str | None = xml()
    utc_number: str | None = xml()
    serial_number: str | None = xml()
    lot_number: str | None = xml()
    purchase_price: int | None = xml()
    critical: bool | None = xml()
    electronic_address: ElectronicAddress | None = xml()
    lifecycle: LifecycleDate | None = xml()
    acceptance_test: AcceptanceTest | None = xml()
    initial_condition: str | None = xml()
    initial_loss_of_life: str | None = xml()
    status: Status | None = xml()


@dataclass(slots=True, kw_only=True)
class EndDevice(Asset):
    """customer.xsd: EndDevice extends AssetContainer (which adds nothing) extends Asset."""

    is_virtual: bool | None = xml()
    is_pan: bool | None = xml()
    install_code: str | None = xml()
    amr_system: str | None = xml()


@dataclass(slots=True, kw_only=True)
class Meter(EndDevice):
    form_number: str | None = xml()
    meter_multipliers: list[MeterMultiplier] = many("MeterMultipliers")
    interval_length: int | None = xml()


@dataclass(slots=True, kw_only=True)
class ServiceSupplier(OrganisationRole):
    kind: str | None = xml()
    issuer_identification_number: str | None = xml()
    effective_date: int | None = xml()


@dataclass(slots=True, kw_only=True)
class StatementRef(Object):
    file_name: str | None = xml()
    media_type: str | None = xml()
    statement_url: str | None = xml("statementURL")


@dataclass(slots=True, kw_only=True)
class Statement(CustomerResource):
    issue_date_time: int | None = xml()
    statement_refs: list[StatementRef] = many("statementRef")


@dataclass(slots=True, kw_only=True)
class RetailCustomer:
    """A retail customer's information as one feed carries it (not an XML element of its own:
    ``RetailCustomer/{id}`` is the REST path the customer resources hang under)."""

    customers: list[Customer] = field(default_factory=list)
    accounts: list[CustomerAccount] = field(default_factory=list)
    agreements: list[CustomerAgreement] = field(default_factory=list)
    service_locations: list[ServiceLocation] = field(default_factory=list)
    meters: list[Meter] = field(default_factory=list)
    service_suppliers: list[ServiceSupplier] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)


# --------------------------------------------------------------------------- the document


@dataclass(slots=True, kw_only=True)
class Feed:
    """What :func:`espi.parse` returns: an Atom feed (or a lone entry or bare resource).

    ``entries`` holds every resource in document order; the other lists are views of them,
    tied together from Atom links and, where a file has none, from document order.
    """

    id: str | None = None
    title: str | None = None
    updated: datetime | None = None
    links: list[Link] = field(default_factory=list)
    entries: list[Any] = field(default_factory=list)
    usage_points: list[UsagePoint] = field(default_factory=list)
    meter_readings: list[MeterReading] = field(default_factory=list)
    reading_types: list[ReadingType] = field(default_factory=list)
    interval_blocks: list[IntervalBlock] = field(default_factory=list)
    usage_summaries: list[UsageSummary] = field(default_factory=list)
    power_quality_summaries: list[ElectricPowerQualitySummary] = field(default_factory=list)
    local_time_parameters: list[LocalTimeParameters] = field(default_factory=list)
    application_information: list[ApplicationInformation] = field(default_factory=list)
    authorizations: list[Authorization] = field(default_factory=list)
    program_id_mappings: list[ProgramIdMappings] = field(default_factory=list)
    retail_customer: RetailCustomer = field(default_factory=RetailCustomer)
    service_status: ServiceStatus | None = None
    batch_list: BatchList | None = None
    #: Real-world deviations the reader tolerated (see :class:`espi.Quirk`).
    quirks: list[Any] = field(default_factory=list, compare=False)

    def link(self, rel: str) -> str | None:
        return next((lk.href for lk in self.links if lk.rel == rel), None)

    def readings(self) -> Iterator[IntervalReading]:
        """Every IntervalReading of the document, in document order, linked or not."""
        for block in self.interval_blocks:
            yield from block.readings

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{name}={len(getattr(self, name)):,}"
            for name in ("usage_points", "meter_readings", "reading_types", "interval_blocks",
                         "usage_summaries")
            if getattr(self, name)
        )  # fmt: skip
        quirks = f", quirks={len(self.quirks)}" if self.quirks else ""
        return f"Feed({self.id!r}, {counts or 'empty'}, {span_of(self.readings())}{quirks})"
