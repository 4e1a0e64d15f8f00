"""Cost–quality routing: one cost model for the sweep and for deployed routers.

- ``calibration``: Platt / isotonic maps from router scores to p̂, Brier, reliability (pure math);
- ``costq``: cost estimates, utility routing over a λ grid, fronts, hulls, AIQ, APGR / CPT
  (pure math);
- ``model``: the one cost model (usage log -> cost known before the call, the setting's λ grid,
  calibration of a router cell, the deployable ``CostModel``);
- ``stage``: the sweep's cost–quality stage (fronts and scores of every cell and baseline).
"""
