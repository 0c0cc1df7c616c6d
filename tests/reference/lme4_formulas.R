# Reference fits from R's lme4 and lm for formula and model-frame features:
# ordered factors (contr.poly), poly(), scale(), log/sqrt/exp transforms, the
# `.` shorthand, subset= and na.action = na.exclude. One JSON fixture per model.
#
# Usage:
#   Rscript tests/reference/lme4_formulas.R OUT_DIR
#
# The data are lme4's sleepstudy and R's mtcars, with derived columns made
# here, embedded in every fixture ("dataset": "inline"; factors as strings), so
# no input directory is needed.
#
# Fields (besides those of lme4_goldens.R: name, kind, formula, reml, nobs,
# objective, beta, se, sigma, fitted, warnings, R_version, lme4_version):
#   python_formula, python_args   the same model in lmmlib's spelling (subset as
#                                 a DataFrame.eval string, na_action)
#   factors, ordered              level order of every factor in `data`; which
#                                 of them are ordered factors
#   theta, theta_names            getME(m, "theta") (lmer only)
#   *_tight                       objective, theta, beta, se, sigma of the
#                                 refit with LMER_TIGHT (lmer only)
#   fitted                        fitted(m): for na.exclude fits one value per
#                                 row of the data (null where a row was left out)
#   residuals                     residuals(m), the same length as fitted
#   predict_newdata               newdata (columns) and predict(m, newdata) with
#                                 (re) and without (fixed, re.form = NA) the
#                                 random effects, where given
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

out_dir <- script_args("Rscript lme4_formulas.R OUT_DIR", names = "out_dir")$out_dir

# ---------------------------------------------------------------------------
# Data

sleep <- lme4::sleepstudy
# An ordered factor of 5 bands of days (contr.poly: .L, .Q, .C, ^4)
sleep$Dayband <- factor(findInterval(sleep$Days, c(2, 4, 6, 8)), levels = 0:4,
                        labels = c("d0-1", "d2-3", "d4-5", "d6-7", "d8-9"), ordered = TRUE)

# A small frame for `.`: the response, two covariates and the grouping factor
sleep_dot <- data.frame(Reaction = sleep$Reaction, Days = sleep$Days,
                        Dsq = (sleep$Days - 4.5)^2, Subject = sleep$Subject)

# sleepstudy with missing values: the response on three rows, Days on one
sleep_na <- sleep[c("Reaction", "Days", "Subject")]
sleep_na$Reaction[c(3, 20, 77)] <- NA
sleep_na$Days[100] <- NA

cars <- datasets::mtcars[c("mpg", "wt", "hp", "qsec")]

newdata_sleep <- data.frame(Days = c(0.5, 4, 11), Subject = c("309", "333", "372"))

# ---------------------------------------------------------------------------
# Fields

ordered_cols <- function(data) {
  I(names(data)[vapply(data, is.ordered, logical(1))])
}

all_levels <- function(data) {
  cols <- names(data)[vapply(data, is.factor, logical(1))]
  out <- lapply(cols, function(v) I(levels(data[[v]])))
  names(out) <- cols
  out
}

numbers <- function(x) I(unname(as.numeric(x)))

lmer_fields <- function(m, m_tight) {
  list(
    theta = numbers(getME(m, "theta")),
    theta_names = I(names(getME(m, "theta"))),
    ngroups = as.list(getME(m, "l_i")),
    singular = isSingular(m, tol = 1e-4),
    varcorr = varcorr_rows(m),
    objective_tight = unname(-2 * as.numeric(logLik(m_tight))),
    theta_tight = numbers(getME(m_tight, "theta")),
    beta_tight = numbers(fixef(m_tight)),
    se_tight = numbers(sqrt(diag(as.matrix(vcov(m_tight))))),
    sigma_tight = sigma(m_tight)
  )
}

predict_fields <- function(m, newdata, mixed) {
  if (is.null(newdata)) return(NULL)
  out <- list(data = inline_data(newdata))
  if (mixed) {
    out$re <- numbers(predict(m, newdata))
    out$fixed <- numbers(predict(m, newdata, re.form = NA))
  } else {
    out$fixed <- numbers(predict(m, newdata))
  }
  out
}

# One fixture: fit `formula` (R) by lmer (REML) or lm, with subset / na.action.
fixture <- function(name, kind, formula, data, python_formula, python_args = list(),
                    subset = NULL, na_action = na.omit, newdata = NULL) {
  form <- as.formula(formula)
  fit <- function(control = NULL) {
    if (kind == "lmer") {
      args <- list(form, data = data, REML = TRUE, na.action = na_action)
      if (!is.null(control)) args$control <- control
    } else {
      args <- list(form, data = data, na.action = na_action)
    }
    if (!is.null(subset)) args$subset <- subset
    do.call(if (kind == "lmer") lmer else lm, args)
  }
  res <- with_notes(fit())
  m <- res$value
  mixed <- kind == "lmer"
  beta <- if (mixed) fixef(m) else coef(m)
  out <- list(
    name = name, kind = kind, formula = formula, python_formula = python_formula,
    python_args = python_args, reml = mixed, dataset = "inline",
    data = inline_data(data), factors = all_levels(data), ordered = ordered_cols(data),
    nobs = nobs(m),
    objective = unname(-2 * as.numeric(logLik(m))),
    beta = list(names = I(names(beta)), values = numbers(beta)),
    se = numbers(sqrt(diag(as.matrix(vcov(m))))),
    sigma = sigma(m),
    fitted = I(unname(fitted(m))),
    residuals = I(unname(residuals(m))),
    warnings = I(res$notes)
  )
  if (mixed) out <- c(out, lmer_fields(m, fit(LMER_TIGHT)))
  pred <- predict_fields(m, newdata, mixed)
  if (!is.null(pred)) out$predict_newdata <- pred
  out <- c(out, version_fields())
  write_fixture_json(out, out_dir, name)
  cat(sprintf("%-18s objective %.10g\n", name, out$objective))
  name
}

# ---------------------------------------------------------------------------
# Models

models <- c(
  fixture("ordered", "lmer", "Reaction ~ Dayband + (1 | Subject)", sleep[c("Reaction", "Dayband", "Subject")],
          "Reaction ~ Dayband + (1 | Subject)"),
  fixture("poly", "lmer", "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)",
          sleep[c("Reaction", "Days", "Subject")],
          "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)", newdata = newdata_sleep),
  fixture("scale_slope", "lmer", "Reaction ~ scale(Days) + (scale(Days) | Subject)",
          sleep[c("Reaction", "Days", "Subject")],
          "Reaction ~ scale(Days) + (scale(Days) | Subject)", newdata = newdata_sleep),
  fixture("log_sqrt", "lmer", "log(Reaction) ~ sqrt(Days) + exp(Days/10) + (1 | Subject)",
          sleep[c("Reaction", "Days", "Subject")],
          "log(Reaction) ~ sqrt(Days) + exp(Days/10) + (1 | Subject)", newdata = newdata_sleep),
  # lme4 would put Subject into the fixed part too; lmmlib's `.` leaves the
  # grouping factors out, which R spells `. - Subject`
  fixture("dot", "lmer", "Reaction ~ . - Subject + (1 | Subject)", sleep_dot,
          "Reaction ~ . + (1 | Subject)"),
  fixture("dot_lm", "lm", "mpg ~ .", cars, "mpg ~ ."),
  # scale() is computed on all rows, before the subset (R's model frame)
  fixture("subset", "lmer", "Reaction ~ scale(Days) + (1 | Subject)",
          sleep[c("Reaction", "Days", "Subject")],
          "Reaction ~ scale(Days) + (1 | Subject)",
          python_args = list(subset = "Days >= 2 and Subject != '308'"),
          subset = with(sleep, Days >= 2 & Subject != "308"), newdata = newdata_sleep),
  fixture("na_exclude", "lmer", "Reaction ~ Days + (Days | Subject)", sleep_na,
          "Reaction ~ Days + (Days | Subject)", python_args = list(na_action = "exclude"),
          na_action = na.exclude),
  fixture("na_exclude_lm", "lm", "Reaction ~ Days", sleep_na, "Reaction ~ Days",
          python_args = list(na_action = "exclude"), na_action = na.exclude)
)

write_index_json(c(list(models = I(models)), version_fields()), out_dir)
