"""VietQR codes drawn on our side: the payload (NAPAS's EMVCo profile for transfers to
a bank account) and its QR as inline SVG, so a payment page loads no image from
anywhere else. payOS hands us a ready payload for each payment link; for bank
transfers matched through SePay we build one for the operator's own account."""

from __future__ import annotations

import segno
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# NAPAS's identifier for VietQR, and its service code for a transfer to an account.
_VIETQR_GUID = "A000000727"
_TO_ACCOUNT = "QRIBFTTA"
_VND_NUMERIC = "704"

# Banks by their NAPAS BIN, as customers know them (the bank's app shows the same).
BANKS = {
    "970400": "Saigonbank",
    "970403": "Sacombank",
    "970405": "Agribank",
    "970407": "Techcombank",
    "970409": "Bac A Bank",
    "970412": "PVcomBank",
    "970415": "VietinBank",
    "970416": "ACB",
    "970418": "BIDV",
    "970419": "NCB",
    "970422": "MB Bank",
    "970423": "TPBank",
    "970425": "ABBANK",
    "970426": "MSB",
    "970427": "VietABank",
    "970428": "Nam A Bank",
    "970431": "Eximbank",
    "970432": "VPBank",
    "970436": "Vietcombank",
    "970437": "HDBank",
    "970440": "SeABank",
    "970441": "VIB",
    "970443": "SHB",
    "970448": "OCB",
    "970449": "LPBank",
    "970454": "BVBank",
}


def bank_name(bin_code: str) -> str:
    return BANKS.get(bin_code, f"BIN {bin_code}" if bin_code else "")


def _field(tag: str, value: str) -> str:
    if len(value) > 99:
        raise ValueError(f"VietQR field {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, start 0xFFFF), as EMVCo QR codes end."""
    crc = 0xFFFF
    for byte in data.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def transfer_payload(*, bin_code: str, account: str, memo: str, amount: int | None = None) -> str:
    """The VietQR a bank app reads as "transfer `amount` đồng to this account with this
    memo". Without an amount the customer types one (the code can be printed once)."""
    if not bin_code.isdigit() or len(bin_code) != 6:
        raise ValueError(f"a bank BIN is six digits, not {bin_code!r}")
    beneficiary = _field("00", bin_code) + _field("01", account)
    merchant = _field("00", _VIETQR_GUID) + _field("01", beneficiary) + _field("02", _TO_ACCOUNT)
    body = (
        _field("00", "01")
        + _field("01", "12" if amount else "11")
        + _field("38", merchant)
        + _field("53", _VND_NUMERIC)
        + (_field("54", str(int(amount))) if amount else "")
        + _field("58", "VN")
        + _field("62", _field("08", memo))
        + "6304"
    )
    return body + crc16(body)


def qr_svg(payload: str, *, label: str) -> SafeString:
    """The payload as an inline SVG QR code that scales with its box (CSS sets the
    size); `label` is what a screen reader says."""
    code = segno.make(payload, error="m", micro=False)
    svg = code.svg_inline(scale=1, border=3, omitsize=True, dark="#111827", light="#ffffff")
    # segno's markup is its own, made from our payload: no customer text reaches it.
    return format_html(
        '<div class="qr" role="img" aria-label="{}" data-testid="qr">{}</div>',
        label,
        mark_safe(svg),
    )
