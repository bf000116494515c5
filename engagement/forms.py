from django import forms

from engagement.models import FanProfile


class FanProfileForm(forms.ModelForm):
    class Meta:
        model = FanProfile
        fields = ["display_name", "hidden"]
        labels = {"display_name": "Name on the leaderboard", "hidden": "Leave me off the leaderboard"}
        help_texts = {"display_name": 'Blank: "Fan #" and your member number. Never your email.'}
