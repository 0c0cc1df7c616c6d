# Reference GLMM fits from R's lme4 (glmer), written as one JSON fixture per model.
#
# Usage:
#   Rscript tests/reference/lme4_glmer.R OUT_DIR
#
# The data are lme4's own example data (cbpp, grouseticks, sleepstudy, VerbAgg),
# embedded in every fixture ("dataset": "inline"), so no input directory is needed.
#
# The fields are those written by lme4_goldens.R (see tests/reference/README.md)
# plus, for GLMMs:
#   family, link, nAGQ, weights        the glmer call (weights: a column name)
#   python_formula                     the same model in lmmlib's syntax
#   deviance_lme4                      deviance(m): sum of squared deviance
#                                      residuals (NOT -2 logLik, lme4 issue #375)
#   saturated_loglik                   sum of the log-likelihood of the saturated
#                                      model, sum_i w_i log p(y_i | mu_i = y_i)
#   hessian, gradient                  m@optinfo$derivs: finite-difference
#                                      derivatives of the deviance in (theta, beta)
#                                      (vcov is the beta block of 2 H^-1)
#   se_tight, loglik_tight             from the tight refit
#   vcov_nohess                        vcov(m, use.hessian = FALSE): from the
#                                      PIRLS factor R_X, theta held fixed
#   linpred, pearson, devresid         predict(m), residuals(m, "pearson"),
#                                      residuals(m, "deviance")
#
# Every model is fitted with glmerControl() defaults and refitted with much
# tighter tolerances (nloptwrap for both stages, xtol_abs = ftol_abs = 1e-12,
# tolPwrss = 1e-10); the refit is stored as *_tight.
#
# Note on nAGQ > 1: lme4 1.1-31 computes the adaptive Gauss-Hermite deviance
# from deviance residuals, so its logLik omits the saturated log-likelihood
# (lme4 issue #161): logLik(nAGQ > 1) = true log-likelihood - saturated_loglik.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

out_dir <- script_args("Rscript lme4_glmer.R OUT_DIR", names = "out_dir")$out_dir

N_TIMING <- 5L
GLMER_TIGHT <- glmerControl(
  optimizer = "nloptwrap", tolPwrss = 1e-10,
  optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0, maxeval = 1e5)
)

# ---------------------------------------------------------------------------
# Data

cbpp <- lme4::cbpp
cbpp$prop <- cbpp$incidence / cbpp$size

# cbpp with one 0/1 row per animal: `incidence` ones and `size - incidence` zeros
expand_cbpp <- function(d) {
  rows <- lapply(seq_len(nrow(d)), function(i) {
    n <- d$size[i]; k <- d$incidence[i]
    data.frame(herd = d$herd[i], period = d$period[i],
               y = c(rep(1, k), rep(0, n - k)))
  })
  do.call(rbind, rows)
}
cbpp01 <- expand_cbpp(cbpp)

# HEIGHT (metres above sea level, 403 to 533) is used as is in `grouseticks`, as
# the model is usually written; lme4 then warns "Rescale variables?" and its
# finite-difference Hessian (hence vcov) is unreliable: the default and tight
# fits' SEs differ 3-fold. `grouseticks_c` uses lme4's centred cHEIGHT
# (HEIGHT - mean(HEIGHT)), the same model reparametrised, where the Hessian is
# well conditioned.
grouseticks <- lme4::grouseticks
grouseticks$INDEX <- NULL

# sleepstudy reaction times (ms) rounded to counts: a Poisson GLMM with a
# correlated random slope, to exercise vector-valued random effects
sleep_counts <- lme4::sleepstudy
sleep_counts$y <- round(sleep_counts$Reaction)
sleep_counts$Reaction <- NULL

# VerbAgg, the first 100 respondents: crossed random effects for a 0/1 response
verbagg <- lme4::VerbAgg
verbagg <- droplevels(verbagg[as.integer(verbagg$id) <= 100, ])
verbagg$y <- as.numeric(verbagg$r2 == "Y")
verbagg <- verbagg[, c("y", "Anger", "Gender", "btype", "situ", "id", "item")]

data_sets <- list(cbpp = cbpp, cbpp01 = cbpp01, grouseticks = grouseticks,
                  sleep_counts = sleep_counts, verbagg = verbagg)

# ---------------------------------------------------------------------------
# Models: name, R formula, lmmlib formula, family, weights column, nAGQ, data set

models <- list(
  list("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       "prop ~ period + (1 | herd)", "binomial", "size", 1L, "cbpp"),
  list("cbpp01", "y ~ period + (1 | herd)",
       "y ~ period + (1 | herd)", "binomial", NULL, 1L, "cbpp01"),
  list("grouseticks", "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)",
       "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson", NULL, 1L,
       "grouseticks"),
  list("grouseticks_c", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
       "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson", NULL, 1L,
       "grouseticks"),
  list("grouseticks_brood", "TICKS ~ YEAR + (1 | BROOD)",
       "TICKS ~ YEAR + (1 | BROOD)", "poisson", NULL, 1L, "grouseticks"),
  list("grouseticks_brood_agq10", "TICKS ~ YEAR + (1 | BROOD)",
       "TICKS ~ YEAR + (1 | BROOD)", "poisson", NULL, 10L, "grouseticks"),
  list("sleepstudy_poisson", "y ~ Days + (Days | Subject)",
       "y ~ Days + (Days | Subject)", "poisson", NULL, 1L, "sleep_counts"),
  list("verbagg100", "y ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
       "y ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "binomial", NULL, 1L,
       "verbagg")
)

# ---------------------------------------------------------------------------
# Helpers

fit_model <- function(form, fam, data, nagq, control = glmerControl()) {
  glmer(form, data = data, family = fam, nAGQ = nagq, control = control)
}

# sum_i w_i log p(y_i | mu_i = y_i), on the same scale as logLik (family$aic)
saturated_loglik <- function(m) {
  fam <- family(m)
  y <- getME(m, "y")
  wt <- weights(m, type = "prior")
  n <- if (fam$family == "binomial") wt else rep(1, length(y))
  -fam$aic(y, n, y, wt, 0) / 2
}

glmer_fields <- function(m, m_tight, name, formula_str, py_formula, fam, wcol, nagq, ds,
                         data, form) {
  ll <- logLik(m)
  fe <- fixef(m)
  V <- as.matrix(vcov(m))
  th <- getME(m, "theta")
  out <- list(
    name = name, kind = "glmer", formula = formula_str, python_formula = py_formula,
    family = fam, link = family(m)$link, nAGQ = nagq, weights = wcol, reml = FALSE,
    dataset = "inline", source_data = ds, data = inline_data(data),
    factors = factor_levels(form, data),
    nobs = nobs(m),
    objective = as.numeric(-2 * ll),
    beta = list(names = I(names(fe)), values = I(unname(fe))),
    se = I(unname(sqrt(diag(V)))),
    vcov = rows_of(V),
    vcov_nohess = rows_of(as.matrix(suppressWarnings(vcov(m, use.hessian = FALSE)))),
    sigma = sigma(m),
    loglik = as.numeric(ll),
    aic = AIC(m), bic = BIC(m), df = attr(ll, "df"),
    df_resid = df.residual(m),
    fitted = I(unname(fitted(m))),
    linpred = I(unname(predict(m))),
    pearson = I(unname(residuals(m, type = "pearson"))),
    devresid = I(unname(residuals(m, type = "deviance"))),
    deviance_lme4 = deviance(m),
    saturated_loglik = saturated_loglik(m),
    objective_tight = as.numeric(-2 * logLik(m_tight)),
    loglik_tight = as.numeric(logLik(m_tight)),
    theta = I(unname(th)), theta_names = I(names(th)),
    theta_tight = I(unname(getME(m_tight, "theta"))),
    beta_tight = I(unname(fixef(m_tight))),
    se_tight = I(unname(sqrt(diag(as.matrix(vcov(m_tight)))))),
    vcov_tight = rows_of(as.matrix(vcov(m_tight))),
    lower = I(unname(getME(m, "lower"))),
    ngroups = as.list(ngrps(m)),
    singular = isSingular(m),
    hessian = rows_of(m@optinfo$derivs$Hessian),
    gradient = I(unname(m@optinfo$derivs$gradient)),
    hessian_tight = rows_of(m_tight@optinfo$derivs$Hessian)
  )
  out$varcorr <- varcorr_rows(m)
  out$ranef <- ranef_rows(m)
  re_t <- as.data.frame(ranef(m_tight, condVar = TRUE))
  out$ranef_tight <- list(condval = I(re_t$condval), condsd = I(re_t$condsd))
  out$devcomp <- as.list(m@devcomp$cmp)
  # glmer names one optimiser per stage: always written as an array
  out$optinfo <- optinfo_fields(m, m_tight, optimizer = I(as.character(m@optinfo$optimizer)))
  out
}

# ---------------------------------------------------------------------------
# Fit and write

r_version <- R.version.string
lme4_version <- as.character(packageVersion("lme4"))
rows <- list()

for (spec in models) {
  name <- spec[[1]]; formula_str <- spec[[2]]; py_formula <- spec[[3]]
  fam <- spec[[4]]; wcol <- spec[[5]]; nagq <- spec[[6]]; ds <- spec[[7]]
  data <- data_sets[[ds]]
  form <- as.formula(formula_str)
  fit <- with_notes(fit_model(form, fam, data, nagq))
  m_tight <- with_notes(fit_model(form, fam, data, nagq, control = GLMER_TIGHT))$value
  out <- glmer_fields(fit$value, m_tight, name, formula_str, py_formula, fam, wcol, nagq,
                      ds, data, form)
  out$warnings <- I(fit$notes)
  out$fit_seconds <- median_seconds(function() fit_model(form, fam, data, nagq), N_TIMING)
  out$R_version <- r_version
  out$lme4_version <- lme4_version
  write_fixture_json(out, out_dir, name)
  rows[[name]] <- sprintf("%-24s logLik %14.6f  tight %14.6f  fit_s %.3f  %s", name,
                          out$loglik, out$loglik_tight, out$fit_seconds,
                          paste(out$warnings, collapse = " | "))
}

index <- list(R_version = r_version, lme4_version = lme4_version,
              models = I(vapply(models, `[[`, "", 1)))
write_index_json(index, out_dir)
cat(r_version, "| lme4", lme4_version, "\n")
cat(unlist(rows), sep = "\n")
