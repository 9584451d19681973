"""A submission's reply, derived once whichever layer answers: the wire handler (`api/hiap.py:
send_document`, for a form Connexion read) or the wire gateway itself (`api/gateway.py`, for a plain
form: the same function, without Connexion's layers)."""

from __future__ import annotations

import logging

from mock_portal.api import blocking
from mock_portal.portal.auth import Credentials
from mock_portal.portal.exchange import WireExchange, server_error_reply, submission_reply
from mock_portal.portal.service import Portal, SubmissionForm
from mock_portal.wire.reply import WireReply

log = logging.getLogger(__name__)


async def answer_submission(
    portal: Portal, form: dict[str, str], handed: WireExchange | None, client: str, inline: bool
) -> WireReply:
    """The portal's reply to a submission's form fields (a failure of its own is MaKetQua 500)."""
    try:
        outcome = await blocking.run(portal.submit, submission_form(form), handed, client, inline=inline)
    except Exception as exc:  # nothing was committed: the real portal's MaKetQua 500, HTTP 200
        log.exception("submission failed")
        now = await blocking.run(portal.clock.now, inline=inline)  # may read the database
        return server_error_reply("submit", exc, now)
    return submission_reply(
        outcome.verdict,
        outcome.submission_id,
        outcome.ma_gd,
        outcome.received_at,
        outcome.file_sha256,
        outcome.journal_id,
    )


def submission_form(form: dict[str, str]) -> SubmissionForm:
    """Wire names to Python names, in one place."""
    return SubmissionForm(
        credentials=Credentials(
            facility_code=form.get("maCskcb", ""),
            access_token=form.get("token", ""),
            id_token=form.get("id_token", ""),
            username=form.get("username", ""),
            password_md5=form.get("password", ""),
        ),
        loai_hs=form.get("loaiHs", ""),
        file_b64=form.get("fileBase64Str", ""),
    )
