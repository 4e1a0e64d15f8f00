"""The paper's whole study: Table 1 + Table 2 (standard) and the new-LLM grid, 5 seeds.

Command:  python -m launch.sweep --config=configs/paper.py --workdir=runs/paper
          python -m launch.sweep --config=configs/paper.py:encoder=minilm --workdir=runs/paper-minilm
Runtime:  2.6-4 min on one H200 (measured: hashing 156 s and 230 s, MiniLM 243 s, compilation
          included); ~86 min on the idle 2-core CPU (2026-12-03: standard setting 54 min
          measured, newllm estimated; this machine's speed swings up to ~2x). Wall time per
          stage is printed and saved in timings.json.
Expected: summary.md with Table 1, Table 2 and the new-LLM table, baselines, the three claims
          checked, and figures/.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "paper"
  c.settings = ("standard", "newllm")
  profiles = list(rp_config.table1_profiles())
  profiles += [p for p in rp_config.table2_profiles() if p not in profiles]
  c.profiles = tuple(profiles)
  c.profiles_newllm = rp_config.table1_profiles()  # Fig. 4 uses the Table 1 profiles
  c.grid = "auto"  # vmap on accelerators; cells one after another on a single CPU
  rp_config.paper_protocol(c)
  return rp_config.apply_common_args(c, arg)
