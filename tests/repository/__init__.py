"""The repository itself: packaging, workflows, the layout's contracts, prerequisites, the Expense
Manager schema.
"""
