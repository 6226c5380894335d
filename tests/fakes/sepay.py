"""Fake SePay: the bank account it watches, the webhook it posts for every transaction,
and its transaction list API, in SePay's shapes (https://developer.sepay.vn).

The webhook (POST to the URL the operator registered, `Authorization: Apikey KEY`):
`{"id": 92704, "gateway": "Vietcombank", "transactionDate": "2023-03-25 14:02:37",
"accountNumber": "0123499999", "code": null, "content": "...", "transferType": "in",
"transferAmount": 2277000, "accumulated": 19077000, "subAccount": null,
"referenceCode": "MBVCB.3278907687", "description": "..."}`; SePay wants
`{"success": true}` back with a 2xx.

The user API (`Authorization: Bearer TOKEN`): `GET /userapi/transactions/list` answers
`{"status": 200, "error": null, "messages": {"success": true}, "transactions": [...]}`
with amounts as decimal strings (`"amount_in": "18067000.00"`).
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from .base import FakeServer, RecordedRequest, Response, Route, json_response, random_id

VN = timezone(timedelta(hours=7))


class FakeSePay(FakeServer):
    name = "fake-sepay"
    default_key = "fake-sepay-api-token"

    def __init__(
        self,
        *,
        account_number: str = "0071000888888",
        gateway: str = "MBBank",
        webhook_url: str | None = None,
        webhook_key: str = "fake-sepay-webhook-key",
        api_token: str = "fake-sepay-api-token",
    ) -> None:
        self.account_number, self.gateway = account_number, gateway
        self.webhook_url, self.webhook_key = webhook_url, webhook_key
        self._ids = itertools.count(92704)
        super().__init__(expected_key=api_token)

    def reset(self) -> None:
        super().reset()
        self.transactions: list[dict[str, Any]] = []  # webhook bodies, oldest first
        self.balance = 19_077_000
        self.deliveries: list[tuple[dict[str, Any], int]] = []

    def routes(self) -> list[Route]:
        return [
            Route("GET", re.compile("/userapi/transactions/list"), self._list),
            Route("GET", re.compile(r"/userapi/transactions/details/(?P<id>\d+)"), self._details),
        ]

    def error_response(self, status: int, message: str | None = None) -> Response:
        return json_response(
            {"status": status, "error": message or "error", "messages": {"success": False}}, status
        )

    # ---- the bank account --------------------------------------------------------------

    def transfer(
        self,
        content: str,
        amount: int,
        *,
        direction: str = "in",
        code: str | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Money moves on the account: SePay records it and (with `deliver` and a
        `webhook_url`) posts the webhook. Returns the webhook body."""
        self.balance += amount if direction == "in" else -amount
        body = {
            "id": next(self._ids),
            "gateway": self.gateway,
            "transactionDate": datetime.now(VN).strftime("%Y-%m-%d %H:%M:%S"),
            "accountNumber": self.account_number,
            "code": code,
            "content": content,
            "transferType": direction,
            "transferAmount": amount,
            "accumulated": self.balance,
            "subAccount": None,
            "referenceCode": f"FT{random_id('', 12).upper()}",
            "description": f"BankAPINotify {content}",
        }
        with self._lock:
            self.transactions.append(body)
        if deliver and self.webhook_url:
            self.deliver(body)
        return body

    def deliver(self, body: dict[str, Any], *, key: str | None = None) -> int:
        """Post a webhook body to `webhook_url` as SePay does (again, for a retry)."""
        assert self.webhook_url, "set webhook_url first"
        answer = httpx.post(
            self.webhook_url,
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Apikey {key or self.webhook_key}",
            },
            timeout=10,
        )
        with self._lock:
            self.deliveries.append((body, answer.status_code))
        return answer.status_code

    # ---- the user API ------------------------------------------------------------------

    def _listed(self, body: dict[str, Any]) -> dict[str, Any]:
        amount = f"{body['transferAmount']}.00"
        return {
            "id": str(body["id"]),
            "bank_brand_name": body["gateway"],
            "account_number": body["accountNumber"],
            "transaction_date": body["transactionDate"],
            "amount_out": amount if body["transferType"] == "out" else "0.00",
            "amount_in": amount if body["transferType"] == "in" else "0.00",
            "accumulated": f"{body['accumulated']}.00",
            "transaction_content": body["content"],
            "reference_number": body["referenceCode"],
            "code": body["code"],
            "sub_account": body["subAccount"],
            "bank_account_id": "19",
        }

    def _list(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        rows = [self._listed(t) for t in reversed(self.transactions)]
        if number := req.query.get("account_number"):
            rows = [r for r in rows if r["account_number"] == number]
        if since := req.query.get("since_id"):
            rows = [r for r in rows if int(r["id"]) >= int(since)]
        if day := req.query.get("transaction_date_min"):
            rows = [r for r in rows if r["transaction_date"][:10] >= day[:10]]
        rows = rows[: int(req.query.get("limit") or 5000)]
        return json_response(
            {"status": 200, "error": None, "messages": {"success": True}, "transactions": rows}
        )

    def _details(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        found = next((t for t in self.transactions if str(t["id"]) == match.group("id")), None)
        if found is None:
            return self.error_response(404, "Transaction not found")
        answer = {"status": 200, "error": None, "messages": {"success": True}}
        return json_response({**answer, "transaction": self._listed(found)})


__all__ = ["FakeSePay"]
