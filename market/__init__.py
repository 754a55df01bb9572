"""The exchange core: accounts, prices, margin, liquidity, the waterfall and ADL policies.

numpy/scipy only; never imports mesa, agents, experiments or viz.
"""
