#!/usr/bin/env python3
"""Regenerates core/src/stats/reference.json: the numbers cleave's statistics are checked
against, computed independently with scipy and statsmodels.

    pip install scipy statsmodels && python3 scripts/stats-reference.py
"""
import json
import math
import pathlib

import numpy as np
from scipy import stats
from scipy import integrate
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
import statsmodels.api as sm
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

ALPHA = 0.05
rng = np.random.default_rng(20261121)
out = {"alpha": ALPHA, "welch": [], "proportions": [], "srm": [], "corrections": [], "msprt": [],
       "bayesian": [], "power": [], "cuped": []}

for (mc, sc, nc, mt, st, nt) in [
    (10.0, 3.0, 500, 10.4, 3.5, 480),
    (0.0, 1.0, 40, 0.1, 2.0, 25),
    (120.0, 60.0, 5000, 118.0, 55.0, 5100),
    (5.0, 1.0, 12, 6.5, 1.5, 9),
]:
    c, t = rng.normal(mc, sc, nc), rng.normal(mt, st, nt)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    tstat, p, df = cm.ttest_ind(usevar="unequal")
    lo, hi = cm.tconfint_diff(alpha=ALPHA, usevar="unequal")
    out["welch"].append({
        "control": {"units": nc, "mean": float(c.mean()), "variance": float(c.var(ddof=1))},
        "treatment": {"units": nt, "mean": float(t.mean()), "variance": float(t.var(ddof=1))},
        "difference": float(t.mean() - c.mean()), "p_value": float(p),
        "ci_low": float(lo), "ci_high": float(hi),
    })

for (xc, nc, xt, nt) in [(100, 1000, 130, 1000), (520, 25000, 610, 25100), (3, 40, 9, 38), (4800, 50000, 4790, 50200)]:
    z, p = proportions_ztest([xt, xc], [nt, nc])
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff", alpha=ALPHA)
    out["proportions"].append({
        "control": [xc, nc], "treatment": [xt, nt],
        "difference": xt / nt - xc / nc, "p_value": float(p), "ci_low": float(lo), "ci_high": float(hi),
    })

for (observed, weights) in [([5200, 4800], [1, 1]), ([5010, 4990], [1, 1]), ([2600, 2500, 4900], [2500, 2500, 5000]), ([1030, 980, 1010, 950], [1, 1, 1, 1]), ([5400, 4800], [1, 1]), ([1000, 7900, 1100], [1, 8, 1])]:
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    chi, p = stats.chisquare(observed, expected)
    # The sequential test's Bayes factor: Dirichlet-multinomial (prior 1000 x the shares)
    # against the multinomial at the shares, both from scipy's own distributions.
    shares = [w / sum(weights) for w in weights]
    log_bf = (stats.dirichlet_multinomial.logpmf(observed, [1000 * s for s in shares], total)
              - stats.multinomial.logpmf(observed, total, shares))
    out["srm"].append({"observed": observed, "weights": weights, "chi_square": float(chi), "p_value": float(p),
                       "sequential_p_value": float(min(1.0, math.exp(-log_bf)))})

for p in [[0.01, 0.04, 0.03, 0.005, 0.2], [0.5, 0.001, 0.049, 0.02], [0.3]]:
    out["corrections"].append({
        "p_values": p,
        "holm": [float(x) for x in multipletests(p, method="holm")[1]],
        "benjamini_hochberg": [float(x) for x in multipletests(p, method="fdr_bh")[1]],
    })

# mSPRT (Johari, Pekelis, Walsh 2017, normal mixture): no library implements it, so this is
# the paper's formula evaluated in numpy, a check on the arithmetic.
for (d, v, tau2) in [(0.02, 7.2e-6, 9e-4), (0.001, 1e-4, 1e-4), (-0.5, 0.04, 0.01)]:
    log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * d * d / (2 * v * (v + tau2))
    out["msprt"].append({"difference": d, "variance": v, "tau2": tau2, "p_value": min(1.0, math.exp(-log_lambda))})

# Bayesian reading: flat prior on the relative lift, delta-method variance of the ratio of
# means; the chance and interval from scipy's normal, the expected losses integrated
# numerically (a check on the closed forms, not a copy of them).
for (mc, vc, mt, vt) in [(10.0, 0.018, 10.4, 0.0255), (0.1, 2.0e-5, 0.12, 2.3e-5), (120.0, 0.72, 118.0, 0.59), (-2.0, 0.04, -1.5, 0.05)]:
    lift = mt / mc - 1
    sd = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    post = stats.norm(lift, sd)
    lo, hi = post.interval(1 - ALPHA)
    loss = integrate.quad(lambda x: max(0.0, -x) * post.pdf(x), lift - 40 * sd, lift + 40 * sd, points=[0.0], limit=200, epsabs=0, epsrel=1e-12)[0]
    keep = integrate.quad(lambda x: max(0.0, x) * post.pdf(x), lift - 40 * sd, lift + 40 * sd, points=[0.0], limit=200, epsabs=0, epsrel=1e-12)[0]
    out["bayesian"].append({
        "control": [mc, vc], "treatment": [mt, vt], "chance_to_beat_control": float(post.sf(0.0)),
        "lift": lift, "lift_ci_low": float(lo), "lift_ci_high": float(hi),
        "expected_loss": float(loss), "control_expected_loss": float(keep),
    })

# Power of the two-sided z-test with two equal arms, and the units it needs.
for (es, n, wanted) in [(0.1, 1000.0, 0.8), (0.02, 40000.0, 0.9), (0.5, 30.0, 0.8), (0.05, 5000.0, 0.95)]:
    solver = NormalIndPower()
    out["power"].append({
        "effect_size": es, "units_per_arm": n, "power": float(solver.power(es, n, ALPHA, ratio=1.0)),
        "wanted": wanted, "units_needed": float(solver.solve_power(es, nobs1=None, alpha=ALPHA, power=wanted, ratio=1.0)),
    })

# CUPED: the regression adjustment y ~ arm + x by statsmodels OLS (its arm coefficient is the
# adjusted difference, its x coefficient the pooled slope); each arm's adjusted variance
# straight from the adjusted values. A third of the units have no pre-period data (x = 0).
for (n_c, n_t, rho, lift) in [(400, 380, 0.7, 0.3), (1200, 1250, 0.4, 0.0), (60, 75, 0.9, 1.0)]:
    arms = []
    for n, shift in [(n_c, 0.0), (n_t, lift)]:
        pre = rng.normal(10.0, 3.0, n)
        post = 10.0 + shift + rho * (pre - 10.0) + math.sqrt(1 - rho**2) * 3.0 * rng.normal(0, 1, n)
        pre[: n // 3] = 0.0
        arms.append((pre, post))
    x = np.concatenate([arms[0][0], arms[1][0]])
    y = np.concatenate([arms[0][1], arms[1][1]])
    t = np.concatenate([np.zeros(n_c), np.ones(n_t)])
    fit = sm.OLS(y, sm.add_constant(np.column_stack([t, x]))).fit()
    theta = float(fit.params[2])
    summaries, adjusted_var = [], []
    for (pre, post) in arms:
        summaries.append({"units": len(post), "mean": float(post.mean()), "variance": float(post.var(ddof=1)),
                          "covariate_mean": float(pre.mean()), "covariate_variance": float(pre.var(ddof=1)),
                          "covariance": float(np.cov(pre, post, ddof=1)[0, 1])})
        adjusted_var.append(float((post - theta * (pre - x.mean())).var(ddof=1)))
    out["cuped"].append({"arms": summaries, "theta": theta, "adjusted_difference": float(fit.params[1]),
                         "adjusted_variances": adjusted_var})

path = pathlib.Path(__file__).resolve().parent.parent / "core/src/stats/reference.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
