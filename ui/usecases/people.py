"""Users and feedback: the built-in login's users (admins only), thumbs up/down on answers
(any user, on their own answers) and its export as an evaluation set (admins only)."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from assistant.answer_models import Answer
from assistant.feedback import ExportSummary, FeedbackRecord, Rating, write_beir
from retrieval.models import Principal
from ui.auth.bootstrap import forget_initial_password
from ui.auth.users import Role, UserRecord
from ui.usecases.curation import require_admin


class People:
    # --- users -----------------------------------------------------------------------------
    def list_users(self, principal: Principal) -> list[UserRecord]:
        require_admin(principal)
        return self.users.list()

    def get_user(self, principal: Principal, username: str) -> UserRecord:
        require_admin(principal)
        return self.users.get(username)

    def add_user(self, principal: Principal, username: str, password: str, role: Role = "employee",
                 groups: list[str] | None = None) -> UserRecord:
        require_admin(principal)
        return self.users.add(username, password, role, groups or [])

    def update_user(self, principal: Principal, username: str, role: Role | None = None,
                    groups: list[str] | None = None) -> UserRecord:
        """``None`` leaves that part as it is."""
        require_admin(principal)
        if groups is not None:
            self.users.set_groups(username, groups)
        if role is not None:
            self.users.set_role(username, role)
        return self.users.get(username)

    def set_user_password(self, principal: Principal, username: str, password: str) -> None:
        require_admin(principal)
        self.users.set_password(username, password)
        forget_initial_password(self.settings, username)

    def remove_user(self, principal: Principal, username: str) -> UserRecord:
        require_admin(principal)
        if username == principal.user:
            raise ValueError("You cannot remove yourself; ask another administrator.")
        removed = self.users.remove(username)
        self.api_keys.revoke_all(username)  # a user of the same name made later must not inherit them
        return removed

    # --- feedback --------------------------------------------------------------------------
    def record_feedback(self, principal: Principal, question: str, answer: Answer, rating: Rating,
                        comment: str = "", collections: list[str] | None = None) -> int:
        """One rating of an answer the principal was given; its text is kept only as the audit
        privacy setting allows (``FeedbackStore``)."""
        return self.feedback_store.add(principal.user, question, answer, rating, comment, list(collections or []))

    def update_feedback(self, principal: Principal, feedback_id: int, rating: Rating | None = None,
                        comment: str | None = None) -> None:
        mine = {r.id for r in self.feedback_store.list(user=principal.user, limit=1_000_000)}
        if feedback_id not in mine:
            raise PermissionError("This rating is not yours to change.")
        self.feedback_store.update(feedback_id, rating=rating, comment=comment)

    def list_feedback(self, principal: Principal, rating: Rating | None = None) -> list[FeedbackRecord]:
        require_admin(principal)
        return self.feedback_store.list(rating=rating)

    def export_feedback(self, principal: Principal, folder: Path,
                        ratings: tuple[Rating, ...] = ("up", "down")) -> ExportSummary:
        """The BEIR-layout evaluation set (corpus.jsonl, queries.jsonl, qrels/test.tsv) in ``folder``."""
        require_admin(principal)
        records = [r for r in reversed(self.feedback_store.list(limit=1_000_000)) if r.rating in ratings]
        return write_beir(records, folder)

    def export_feedback_zip(self, principal: Principal, ratings: tuple[Rating, ...] = ("up", "down")) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "docent-feedback"
            self.export_feedback(principal, folder, ratings)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(folder.rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(folder.parent).as_posix())
        return buf.getvalue()
