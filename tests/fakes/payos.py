"""Fake payOS (payment links for VietQR) with payOS's request, answer and webhook shapes.

The API (https://payos.vn/docs/api/): `x-client-id` and `x-api-key` headers; bodies and
answers are JSON `{"code": "00", "desc": "success", "data": {...}, "signature": "..."}`,
where `signature` is the hex HMAC-SHA256, keyed by the checksum key, of the data's
fields sorted by name and joined as `key=value&...` (null as "", lists as compact JSON).
A payment link is created with a signature over `amount, cancelUrl, description,
orderCode, returnUrl` only. Errors answer HTTP 200 with another code ("20" bad input,
"201" bad signature, "231" order code taken, "101" no such link).

The webhook payOS posts when a link is paid has the same envelope, with the
transaction in `data`; `pay()` marks a link paid here and delivers its webhook to
`webhook_url` over HTTP, as the bank's confirmation reaching payOS would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from .base import FakeServer, RecordedRequest, Response, Route, json_response, random_id

VN = timezone(timedelta(hours=7))
BANK_BIN = "970422"  # MB Bank, where payOS's virtual accounts live in this fake
ACCOUNT_NAME = "CONG TY TNHH NEXAI VIET NAM"
_CREATE_FIELDS = ("amount", "cancelUrl", "description", "orderCode", "returnUrl")
_WEBHOOK_FIELDS = [
    "orderCode",
    "amount",
    "description",
    "accountNumber",
    "reference",
    "transactionDateTime",
    "currency",
    "paymentLinkId",
    "code",
    "desc",
    "counterAccountBankId",
    "counterAccountBankName",
    "counterAccountName",
    "counterAccountNumber",
    "virtualAccountName",
    "virtualAccountNumber",
]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        items = [dict(sorted(v.items())) if isinstance(v, dict) else v for v in value]
        return json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def sign(data: dict[str, Any], checksum_key: str) -> str:
    """payOS's data signature: HMAC-SHA256 over the sorted `key=value` pairs."""
    message = "&".join(f"{key}={_text(data[key])}" for key in sorted(data))
    return hmac.new(checksum_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _crc(text: str) -> str:
    crc = 0xFFFF
    for byte in text.encode():
        for bit in range(8):
            mix = ((crc >> 15) ^ (byte >> (7 - bit))) & 1
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if mix else 0)
    return f"{crc:04X}"


def vietqr(bin_code: str, account: str, amount: int, memo: str) -> str:
    """The EMVCo VietQR string payOS returns as `qrCode`."""
    merchant = _tlv("00", "A000000727") + _tlv("01", _tlv("00", bin_code) + _tlv("01", account))
    merchant += _tlv("02", "QRIBFTTA")
    body = "".join(
        [
            _tlv("00", "01"),
            _tlv("01", "12"),
            _tlv("38", merchant),
            _tlv("53", "704"),
            _tlv("54", str(amount)),
            _tlv("58", "VN"),
            _tlv("62", _tlv("08", memo)),
            "6304",
        ]
    )
    return body + _crc(body)


def _error(code: str, desc: str, status: int = 200) -> Response:
    return json_response({"code": code, "desc": desc, "data": None}, status)


class FakePayOS(FakeServer):
    name = "fake-payos"
    default_key = "fake-payos-api-key"

    def __init__(
        self,
        *,
        client_id: str = "fake-payos-client-id",
        api_key: str = "fake-payos-api-key",
        checksum_key: str = "fake-payos-checksum-key-0123456789abcdef",
        webhook_url: str | None = None,
    ) -> None:
        self.client_id, self.checksum_key = client_id, checksum_key
        self.webhook_url = webhook_url
        super().__init__(expected_key=api_key)

    def reset(self) -> None:
        super().reset()
        self.links: dict[int, dict[str, Any]] = {}  # order code -> payment link
        self.created: list[dict[str, Any]] = []  # bodies of each create, in order
        self.deliveries: list[tuple[dict[str, Any], int]] = []  # webhooks sent, answer status

    def routes(self) -> list[Route]:
        link = r"(?P<id>[0-9a-f]{32}|\d+)"
        return [
            Route("POST", re.compile("/v2/payment-requests"), self._create),
            Route("GET", re.compile(f"/v2/payment-requests/{link}"), self._get),
            Route("POST", re.compile(f"/v2/payment-requests/{link}/cancel"), self._cancel),
            Route("GET", re.compile(r"/web/(?P<id>[0-9a-f]{32})"), self._page, auth=False),
        ]

    def credential(self, req: RecordedRequest) -> str | None:
        return req.headers.get("x-api-key")

    def check_auth(self, req: RecordedRequest) -> Response | None:
        if req.headers.get("x-client-id") != self.client_id or (
            self.valid_keys is not None and self.credential(req) not in self.valid_keys
        ):
            return _error("401", "Unauthorized", 401)
        return None

    def error_response(self, status: int, message: str | None = None) -> Response:
        return _error(str(status), message or "error", status)

    def _answer(self, data: dict[str, Any]) -> Response:
        return json_response(
            {
                "code": "00",
                "desc": "success",
                "data": data,
                "signature": sign(data, self.checksum_key),
            }
        )

    # ---- the API ---------------------------------------------------------------------

    def _create(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        if any(body.get(name) in (None, "") for name in _CREATE_FIELDS):
            return _error("20", "Thông tin truyền lên không đúng.")
        expected = sign({name: body[name] for name in _CREATE_FIELDS}, self.checksum_key)
        if body.get("signature") != expected:
            return _error("201", "Mã kiểm tra(signature) không hợp lệ")
        code, amount = body["orderCode"], body["amount"]
        if not isinstance(code, int) or not isinstance(amount, int) or amount <= 0:
            return _error("20", "Thông tin truyền lên không đúng.")
        if len(str(body["description"])) > 25:
            return _error("20", "Mô tả tối đa 25 kí tự")
        if code in self.links:
            return _error("231", "Đơn thanh toán đã tồn tại")
        link_id = secrets.token_hex(16)
        account = "V3CAS" + str(code)[-10:]
        expires = body.get("expiredAt") or int(time.time()) + 24 * 3600
        link = {
            "id": link_id,
            "orderCode": code,
            "amount": amount,
            "amountPaid": 0,
            "amountRemaining": amount,
            "status": "PENDING",
            "createdAt": datetime.now(VN).isoformat(timespec="seconds"),
            "transactions": [],
            "cancellationReason": None,
            "canceledAt": None,
            # What the create answer says, kept for the webhook.
            "_description": body["description"],
            "_account": account,
            "_expires": expires,
            "_returnUrl": body["returnUrl"],
            "_cancelUrl": body["cancelUrl"],
        }
        with self._lock:
            self.links[code] = link
            self.created.append(body)
        return self._answer(
            {
                "bin": BANK_BIN,
                "accountNumber": account,
                "accountName": ACCOUNT_NAME,
                "amount": amount,
                "description": body["description"],
                "orderCode": code,
                "currency": "VND",
                "paymentLinkId": link_id,
                "status": "PENDING",
                "expiredAt": expires,
                "checkoutUrl": self.url(f"/web/{link_id}"),
                "qrCode": vietqr(BANK_BIN, account, amount, body["description"]),
            }
        )

    def _find(self, key: str) -> dict[str, Any] | None:
        if key.isdigit() and int(key) in self.links:
            return self.links[int(key)]
        return next((link for link in self.links.values() if link["id"] == key), None)

    @staticmethod
    def _public(link: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in link.items() if not k.startswith("_")}

    def _get(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        link = self._find(match.group("id"))
        if link is None:
            return _error("101", "Không tìm thấy thông tin đơn hàng")
        if link["status"] == "PENDING" and link["_expires"] < time.time():
            link["status"] = "EXPIRED"
        return self._answer(self._public(link))

    def _cancel(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        link = self._find(match.group("id"))
        if link is None:
            return _error("101", "Không tìm thấy thông tin đơn hàng")
        if link["status"] != "PENDING":
            return _error("20", f"Đơn thanh toán đang ở trạng thái {link['status']}")
        body = req.json if isinstance(req.json, dict) else {}
        link.update(
            status="CANCELLED",
            cancellationReason=body.get("cancellationReason"),
            canceledAt=datetime.now(VN).isoformat(timespec="seconds"),
        )
        return self._answer(self._public(link))

    def _page(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        link = self._find(match.group("id"))
        if link is None:
            return Response(404, b"<h1>Not found</h1>", "text/html; charset=utf-8")
        html = f"<h1>payOS</h1><p>{link['amount']} VND, {link['status']}</p>"
        return Response(200, html.encode(), "text/html; charset=utf-8")

    # ---- what the bank and payOS do ---------------------------------------------------

    def webhook(
        self,
        order_code: int,
        *,
        amount: int | None = None,
        reference: str | None = None,
        code: str = "00",
        checksum_key: str | None = None,
    ) -> dict[str, Any]:
        """The body payOS posts to the webhook URL when `order_code` is paid (or, with
        another `code`, fails), signed with the checksum key (or `checksum_key`)."""
        link = self.links.get(order_code)
        account = link["_account"] if link else "V3CAS0000000123"
        data = dict.fromkeys(_WEBHOOK_FIELDS, "")
        data.update(
            orderCode=order_code,
            amount=amount if amount is not None else (link["amount"] if link else 3000),
            description=link["_description"] if link else "VQRIO123",
            accountNumber=account,
            reference=reference or "FT" + random_id("", 10).upper(),
            transactionDateTime=datetime.now(VN).strftime("%Y-%m-%d %H:%M:%S"),
            currency="VND",
            paymentLinkId=link["id"] if link else "124c33293c43417ab7879e14c8d9eb18",
            code=code,
            desc="Thành công" if code == "00" else "Giao dịch thất bại",
            counterAccountBankId="970436",
            counterAccountBankName="Vietcombank",
            counterAccountName="NGUYEN VAN AN",
            counterAccountNumber="0071000888888",
            virtualAccountName=ACCOUNT_NAME,
            virtualAccountNumber=account,
        )
        return {
            "code": code,
            "desc": "success" if code == "00" else "failed",
            "success": code == "00",
            "data": data,
            "signature": sign(data, checksum_key or self.checksum_key),
        }

    def pay(self, order_code: int, *, amount: int | None = None) -> dict[str, Any]:
        """The customer's bank pays the link: payOS marks it paid and posts the signed
        webhook to `webhook_url` (kept in `deliveries` with the answer's status)."""
        link = self.links[order_code]
        body = self.webhook(order_code, amount=amount)
        paid = body["data"]["amount"]
        link["amountPaid"] += paid
        link["amountRemaining"] = max(0, link["amount"] - link["amountPaid"])
        link["status"] = "PAID" if link["amountRemaining"] == 0 else "UNDERPAID"
        link["transactions"].append(
            {
                "reference": body["data"]["reference"],
                "amount": paid,
                "accountNumber": link["_account"],
                "description": link["_description"],
                "transactionDateTime": body["data"]["transactionDateTime"],
                "virtualAccountName": ACCOUNT_NAME,
                "virtualAccountNumber": link["_account"],
                "counterAccountBankId": "970436",
                "counterAccountBankName": "Vietcombank",
                "counterAccountName": "NGUYEN VAN AN",
                "counterAccountNumber": "0071000888888",
            }
        )
        if self.webhook_url:
            self.deliver(body)
        return body

    def deliver(self, body: dict[str, Any]) -> int:
        """Post a webhook body to `webhook_url` as payOS does; returns the status."""
        assert self.webhook_url, "set webhook_url first"
        answer = httpx.post(self.webhook_url, content=json.dumps(body), timeout=10,
                            headers={"Content-Type": "application/json"})  # fmt: skip
        with self._lock:
            self.deliveries.append((body, answer.status_code))
        return answer.status_code

    def expire(self, order_code: int) -> None:
        """The link's time ran out."""
        self.links[order_code]["_expires"] = int(datetime.now(UTC).timestamp()) - 1

    @property
    def last_link(self) -> dict[str, Any]:
        assert self.links, "no payment link was created"
        return list(self.links.values())[-1]


__all__ = ["FakePayOS", "sign", "vietqr"]
