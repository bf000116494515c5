from django.apps import AppConfig


class EconomicsConfig(AppConfig):
    """What a program costs and returns: the dashboard, the economics report and the rule-set simulator.

    Reads the rollups the posting path keeps (loyalty's daily points and events, perks' cash values);
    writes nothing to the ledger. Sits above loyalty and perks: ledger <- loyalty <- perks <- economics.
    """

    name = "economics"
    verbose_name = "Program economics"
