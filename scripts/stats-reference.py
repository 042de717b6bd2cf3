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
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
import statsmodels.api as sm
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

ALPHA = 0.05
rng = np.random.default_rng(20261121)
out = {"alpha": ALPHA, "welch": [], "proportions": [], "srm": [], "corrections": [], "msprt": [],
       "bayesian": [], "power": [], "cuped": [], "ratio": [], "ratio_cuped": []}

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

# Ratio metrics (e.g. revenue per order): per unit a numerator n and a denominator d; each arm's
# ratio of means and the difference's variance by statsmodels' delta method (NonlinearDeltaCov
# over the four means, each arm's covariance of (n, d) / units), the z-test and its interval.
# Their own generator, so the cases above stay as they were.
ratio_rng = np.random.default_rng(20261204)


def ratio_arm(n, orders, value, pre=None):
    d = ratio_rng.poisson(orders, n).astype(float)
    num = np.array([ratio_rng.gamma(4.0, value / 4.0, int(k)).sum() for k in d])
    return d, num


def moments(num, d):
    c = np.cov(num, d, ddof=1)
    return {"units": len(d), "numerator_mean": float(num.mean()), "denominator_mean": float(d.mean()),
            "numerator_variance": float(c[0, 0]), "denominator_variance": float(c[1, 1]),
            "covariance": float(c[0, 1])}


for (n_c, n_t, orders, value, lift) in [(800, 760, 1.5, 40.0, 0.05), (3000, 3100, 0.8, 25.0, 0.0), (90, 70, 2.5, 10.0, 0.3)]:
    (d_c, num_c), (d_t, num_t) = ratio_arm(n_c, orders, value), ratio_arm(n_t, orders, value * (1 + lift))
    params = np.array([num_c.mean(), d_c.mean(), num_t.mean(), d_t.mean()])
    cov = np.zeros((4, 4))
    cov[:2, :2] = np.cov(num_c, d_c, ddof=1) / n_c
    cov[2:, 2:] = np.cov(num_t, d_t, ddof=1) / n_t
    delta = NonlinearDeltaCov(lambda p: np.atleast_1d(p[2] / p[3] - p[0] / p[1]), params, cov)
    diff, se = float(delta.predicted()[0]), float(np.sqrt(delta.cov()[0, 0]))
    low, high = delta.conf_int(alpha=ALPHA)[0]
    out["ratio"].append({"arms": [moments(num_c, d_c), moments(num_t, d_t)], "difference": diff,
                         "variance": se * se, "p_value": float(2 * stats.norm.sf(abs(diff) / se)),
                         "ci_low": float(low), "ci_high": float(high)})

# Ratio metrics under CUPED: each unit linearised, y = R + (n - R d) / mean(d) with its arm's
# ratio R, and the same for the pre-period with the ratio of all arms together as the covariate;
# then statsmodels OLS y ~ arm + x as for CUPED above. Checks the moment algebra cleave uses.
for (n_c, n_t, orders, value, lift, keep) in [(600, 640, 1.2, 30.0, 0.1, 0.8), (1500, 1450, 2.0, 15.0, 0.0, 0.5)]:
    arms = []
    for n, scale in [(n_c, 1.0), (n_t, 1.0 + lift)]:
        appetite = ratio_rng.gamma(2.0, orders / 2.0, n)
        d_pre = ratio_rng.poisson(appetite).astype(float)
        d = ratio_rng.poisson(appetite * keep + orders * (1 - keep)).astype(float)
        n_pre = np.array([ratio_rng.gamma(4.0, value / 4.0, int(k)).sum() for k in d_pre])
        num = np.array([ratio_rng.gamma(4.0, value * scale / 4.0, int(k)).sum() for k in d])
        d_pre[: n // 4], n_pre[: n // 4] = 0.0, 0.0
        arms.append((num, d, n_pre, d_pre))
    pooled_pre = sum(a[2].sum() for a in arms) / sum(a[3].sum() for a in arms)
    pooled_pre_d = np.concatenate([a[3] for a in arms]).mean()
    ys, xs, summaries = [], [], []
    for (num, d, n_pre, d_pre) in arms:
        r = num.mean() / d.mean()
        ys.append(r + (num - r * d) / d.mean())
        xs.append(pooled_pre + (n_pre - pooled_pre * d_pre) / pooled_pre_d)
        c = np.cov(np.vstack([num, d, n_pre, d_pre]), ddof=1)
        summaries.append({"units": len(d), "means": [float(v.mean()) for v in (num, d, n_pre, d_pre)],
                          "covariance": c.tolist()})
    y, x = np.concatenate(ys), np.concatenate(xs)
    t = np.concatenate([np.zeros(n_c), np.ones(n_t)])
    fit = sm.OLS(y, sm.add_constant(np.column_stack([t, x]))).fit()
    theta = float(fit.params[2])
    out["ratio_cuped"].append({"arms": summaries, "theta": theta, "adjusted_difference": float(fit.params[1]),
                               "adjusted_variances": [float((yy - theta * (xx - x.mean())).var(ddof=1)) for yy, xx in zip(ys, xs)]})

path = pathlib.Path(__file__).resolve().parent.parent / "core/src/stats/reference.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
