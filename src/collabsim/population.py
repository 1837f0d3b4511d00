"""Organisations and geography: every trait of DESIGN.md section 2, drawn from the scenario's population block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special

from collabsim.rng import Streams
from collabsim.variables import COLUMN, N_VARS, Level

SECTORS = ("acute", "community", "primary_care", "mental_health", "social_care", "commissioner")
# Where each sector's culture sits on one professional-culture axis (clinical-acute ... social-care); spread adds
# organisation-level variation. A modelling decision (docs/decisions.md): cross-sector pairs start further apart.
SECTOR_CULTURE = {
    "acute": 0.2,
    "community": 0.45,
    "primary_care": 0.5,
    "mental_health": 0.6,
    "social_care": 0.8,
    "commissioner": 0.35,
}
LOG10_STAFF_RANGE = (1.0, 5.0)  # organisation_size scales log10(staff) from 10 to 100,000 staff onto [0, 1]

TRAITS = {  # scenario trait -> organisation variable
    "leadership_quality": "leadership_quality",
    "implementation_capacity": "implementation_capacity",
    "workforce_instability": "workforce_instability",
    "organisational_flexibility": "organisational_flexibility",
    "improvement_culture": "improvement_culture",
    "baseline_performance": "baseline_performance",
    "professional_threat": "perceived_professional_threat",
}


@dataclass
class Population:
    """Organisation attributes that are not [0, 1] model variables, plus the initial organisation matrix."""

    x: np.ndarray  # km, float64 (n,)
    y: np.ndarray
    sector: np.ndarray  # int8 index into SECTORS
    staff: np.ndarray  # float64
    culture: np.ndarray  # float64, position on the culture axis
    it_system: np.ndarray  # int16
    O: np.ndarray  # float64 (n_org_vars, n): organisation variables at month 0

    @property
    def n(self) -> int:
        return len(self.x)


def beta_quantiles(u: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """The Beta(mean, sd) quantiles of uniforms u: sd is shrunk to the largest a Beta allows, and sd = 0 gives the
    mean. Quantiles rather than draws, so the same u give paired values for any mean and sd."""
    mean = float(np.clip(mean, 1e-6, 1 - 1e-6))
    var_max = mean * (1 - mean)
    var = min(sd * sd, 0.99 * var_max)
    if var <= 0:
        return np.full(len(u), mean)
    k = var_max / var - 1.0
    # the Beta quantile function itself (what scipy.stats.beta.ppf computes, without its per-call checks)
    return scipy.special.betaincinv(mean * k, (1 - mean) * k, u)


def sector_counts(mix: dict[str, float], n: int) -> np.ndarray:
    """Sector codes of n organisations in the scenario's proportions (largest remainder), so a small population
    has exactly the mix asked for rather than a random draw from it."""
    names = list(mix)
    share = np.array([mix[s] for s in names], dtype=float)
    exact = share / share.sum() * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return np.repeat(np.array([SECTORS.index(s) for s in names], dtype=np.int8), counts)


def generate_population(scenario, streams: Streams) -> Population:
    """Organisations of one run. Each component has its own named stream and is drawn as standard variates
    transformed by the scenario's parameters (quantile coupling), so runs that differ in one parameter — arms or
    design points of a sweep with common random numbers — share everything else and differ in that component
    only, in the most paired way (an organisation keeps its rank)."""
    p = scenario.population
    n = p.n_orgs
    sector = streams["population.sector"].permutation(sector_counts(p.sector_mix, n))
    staff = np.exp(np.log(p.size_median_staff) + p.size_sigma * streams["population.size"].standard_normal(n))
    loc = streams["population.location"]
    if p.spatial_clusters > 0:
        towns = loc.uniform(0, p.region_km, size=(p.spatial_clusters, 2))
        home = loc.integers(0, p.spatial_clusters, size=n)
        xy = np.clip(towns[home] + p.cluster_spread_km * loc.standard_normal((n, 2)), 0, p.region_km)
    else:
        xy = p.region_km * loc.random((n, 2))
    centre = np.array([SECTOR_CULTURE[SECTORS[s]] for s in sector])
    culture = centre + 0.5 * p.culture_spread * streams["population.culture"].standard_normal(n)
    it_system = streams["population.it"].integers(0, p.n_it_systems, size=n).astype(np.int16)

    O = np.zeros((N_VARS[Level.ORG], n))
    lo, hi = LOG10_STAFF_RANGE
    O[COLUMN["organisation_size"]] = np.clip((np.log10(staff) - lo) / (hi - lo), 0, 1)
    for trait, var in TRAITS.items():
        t = getattr(p, trait)
        O[COLUMN[var]] = beta_quantiles(streams[f"population.{trait}"].random(n), t.mean, t.sd)
    # Outcomes start at their level without collaboration, the level they relax back to when an organisation stops
    # collaborating (model-*-toward-baseline rows): quality, coverage and reputation at baseline performance,
    # culture at the improvement culture, duplication at 0.5; the gains of collaboration start at zero.
    perf = O[COLUMN["baseline_performance"]]
    for name in ("reputation", "patient_coverage", "care_quality", "staff_attraction"):
        O[COLUMN[name]] = perf
    O[COLUMN["organisational_culture"]] = O[COLUMN["improvement_culture"]]
    O[COLUMN["duplication_of_effort"]] = 0.5
    return Population(
        x=xy[:, 0].copy(), y=xy[:, 1].copy(), sector=sector, staff=staff, culture=culture, it_system=it_system, O=O
    )
