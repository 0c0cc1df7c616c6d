# lme4 values for the exercise solutions of the book chapters (soybean,
# likelihood, glmm): one JSON file, book/exercises.json, one entry per model.
#
# Usage:
#   Rscript tests/reference/book_exercises.R IN_DIR OUT_DIR
#
# IN_DIR holds the course CSVs (python -m lmmlib.datasets export IN_DIR); the
# chapter's simulated counts and lme4's own grouseticks are used inline.
# Fields per entry: formula, family, reml, deviance (-2 logLik), aic, theta,
# beta (names, values), varcorr (group, sdcor), and for some a profile interval.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

paths <- script_args("Rscript book_exercises.R IN_DIR OUT_DIR")
data <- course_data(paths$in_dir, c("nepal", "soybean"))

GLMER_TIGHT <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10,
                            optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0,
                                           maxeval = 1e5))

summary_of <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  fe <- fixef(m)
  list(formula = paste(deparse(formula(m)), collapse = ""),
       reml = isREML(m), deviance = -2 * as.numeric(logLik(m)),
       aic = AIC(m), theta = I(unname(getME(m, "theta"))),
       beta = list(names = I(names(fe)), values = I(unname(fe))),
       varcorr = list(group = I(vc$grp), var1 = I(ifelse(is.na(vc$var1), "", vc$var1)),
                      var2 = I(ifelse(is.na(vc$var2), "", vc$var2)), sdcor = I(vc$sdcor)))
}

out <- list()

# soybean: the day-to-day movement as a random effect of the date
soy <- data$soybean
soy$Datef <- as_factor(soy$Date)
out$soybean_date <- summary_of(lmer(mAqE ~ ID + (1 | plot_number_year) + (1 | Datef),
                                    data = soy, REML = FALSE, control = LMER_TIGHT))

# likelihood: the Nepal models with uncentred age
nep <- data$nepal
out$nepal_age_corr_ml <- summary_of(lmer(arm ~ age + (age | id), data = nep, REML = FALSE,
                                         control = LMER_TIGHT))
out$nepal_age_indep_ml <- summary_of(lmer(arm ~ age + (age || id), data = nep, REML = FALSE,
                                          control = LMER_TIGHT))
out$nepal_agec_indep_ml <- summary_of(lmer(arm ~ ageC + (ageC || id), data = nep,
                                           REML = FALSE, control = LMER_TIGHT))

# glmm: the chapter's simulated counts (numpy default_rng(2016)), profile interval
counts <- data.frame(site = factor(rep(1:10, each = 3)),
                     count = c(0, 0, 0, 3, 2, 1, 1, 1, 1, 1, 4, 3, 2, 0, 0, 2, 2, 3,
                               0, 0, 1, 3, 2, 3, 4, 5, 8, 1, 2, 1))
m_sim <- glmer(count ~ 1 + (1 | site), data = counts, family = "poisson",
               control = GLMER_TIGHT)
# lme4 1.1-31's confint(method = "profile") stops for this intercept-only GLMM
# ("Profiling over both the residual variance and fixed effects is not
# numerically consistent ..."), so the interval for the SD is profiled here
# directly: the Laplace deviance of lme4's devFunOnly, minimised over the
# intercept at each SD, and its crossings of the minimum + qchisq(0.95, 1)
dev_sim <- glmer(count ~ 1 + (1 | site), data = counts, family = poisson,
                 devFunOnly = TRUE)
prof_sim <- function(tau) {
  optimize(function(b) dev_sim(c(tau, b)), c(-5, 5), tol = 1e-12)$objective
}
dmin <- -2 * as.numeric(logLik(m_sim))
cut_sim <- function(tau) prof_sim(tau) - dmin - qchisq(0.95, 1)
tau_hat <- unname(getME(m_sim, "theta"))
ci <- matrix(c(uniroot(cut_sim, c(1e-6, tau_hat), tol = 1e-12)$root,
               uniroot(cut_sim, c(tau_hat, 10), tol = 1e-12)$root), nrow = 1,
             dimnames = list(".sig01", c("2.5 %", "97.5 %")))
out$sim_counts <- c(summary_of(m_sim),
                    list(profile = list(par = I(rownames(ci)), lower = I(unname(ci[, 1])),
                                        upper = I(unname(ci[, 2])))))

# glmm: presence of ticks on grouse chicks, logit and probit links
gt <- grouseticks
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)
gt$any <- as.integer(gt$TICKS > 0)
for (link in c("logit", "probit")) {
  m <- glmer(any ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = gt,
             family = binomial(link), control = GLMER_TIGHT)
  out[[paste0("grouse_any_", link)]] <- c(summary_of(m), list(link = link))
}

out$versions <- version_fields()
write_json(out, file.path(paths$out_dir, "exercises.json"), auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
