"""The example plugin's one model."""

from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.db import Model, utcnow
from trellis.models import Contact


class Call(Model):
    __tablename__ = "callnotes_call"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id", ondelete="CASCADE"),
                                            index=True)
    subject: Mapped[str] = mapped_column(String(200))
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    long_call: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))

    contact: Mapped[Contact] = relationship()

    def __repr__(self) -> str:
        return self.subject
