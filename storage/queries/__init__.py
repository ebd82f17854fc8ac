"""The data layer: the queries the services share, one home for each.

Repositories in the sense of DESIGN.md: plain async functions over an ``AsyncSession`` that
never commit (the caller owns the unit of work). Rules about one row (such as the name we call
a partner) are properties of the model in :mod:`storage.models`; reads that more than one
service needs live here, grouped by what they are about.
"""
