"""The simulator's form in the portal: the range and the other rule set, checked before anything runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms

from economics.report import MAX_RANGE_DAYS
from economics.simulator import Alternative, tiers_parse


class SimulatorForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    rate = forms.DecimalField(
        label="Points per currency unit",
        required=False,
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=4,
        help_text="Blank: the brand's purchase rate.",
    )
    tiers_mode = forms.ChoiceField(
        label="Tiers",
        choices=[("keep", "The brand's tiers"), ("none", "No tiers"), ("custom", "These tiers")],
        initial="keep",
        widget=forms.RadioSelect,
    )
    tiers = forms.CharField(
        label="Tiers (name:threshold:multiplier, lowest first)",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "Green:0:1.0, Gold:500:1.2, Reserve:2500:1.7"}),
    )
    expiry_mode = forms.ChoiceField(
        label="Expiry",
        choices=[("keep", "The brand's expiry"), ("never", "Points never expire"), ("months", "Expire after")],
        initial="keep",
        widget=forms.RadioSelect,
    )
    expire_months = forms.IntegerField(label="Months", required=False, min_value=1, max_value=120)
    flat_network = forms.BooleanField(
        label="The open network's flat rule instead (10 per unit, no tiers)", required=False
    )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                self.add_error("start", "Must not be after 'To'.")
            elif (end - start).days >= MAX_RANGE_DAYS:
                self.add_error("start", f"A range of at most {MAX_RANGE_DAYS} days.")
        if data.get("tiers_mode") == "custom":
            try:
                data["parsed_tiers"] = tiers_parse(data.get("tiers") or "")
            except ValueError as error:
                self.add_error("tiers", str(error))
            else:
                if not data["parsed_tiers"]:
                    self.add_error("tiers", "Give at least one tier, or choose No tiers.")
        if data.get("expiry_mode") == "months" and not data.get("expire_months"):
            self.add_error("expire_months", "How many months points last.")
        return data

    def alternative(self) -> Alternative:
        data = self.cleaned_data
        mode = data["tiers_mode"]
        return Alternative(
            points_per_unit=data.get("rate"),
            tiers=() if mode == "none" else data["parsed_tiers"] if mode == "custom" else None,
            expire_months=data.get("expire_months") if data["expiry_mode"] == "months" else None,
            never_expire=data["expiry_mode"] == "never",
            flat_network=data.get("flat_network", False),
        )

    @classmethod
    def initial_for(cls, today: dt.date) -> dict:
        return {"start": today - dt.timedelta(days=89), "end": today, "tiers_mode": "keep", "expiry_mode": "keep"}
