# Reference fits from R's lme4, written as one JSON fixture per model.
#
# Usage:
#   Rscript tests/reference/lme4_goldens.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the cleaned CSVs written by `python -m lmmlib.datasets export DIR`
# (pig.csv, nepal.csv, pulp.csv, soybean.csv, soybean_disks.csv). The lme4 example
# data sets (sleepstudy, Penicillin, Pastes, Dyestuff, Dyestuff2) are embedded in
# their fixtures ("dataset": "inline").
#
# Every lmer model is fitted with the lme4 defaults (lmerControl()). It is then
# refitted with much tighter nloptwrap tolerances; that result is stored as
# objective_tight / theta_tight, so tests can tell optimiser noise from real
# differences.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

args <- script_args("Rscript lme4_goldens.R INPUT_DIR OUT_DIR")
out_dir <- args$out_dir

N_TIMING <- 11L

# ---------------------------------------------------------------------------
# Data (factor set-up and derived columns: common.R)

data_sets <- c(
  course_data(args$in_dir),
  list(sleepstudy = lme4::sleepstudy, Penicillin = lme4::Penicillin,
       Pastes = lme4::Pastes, Dyestuff = lme4::Dyestuff, Dyestuff2 = lme4::Dyestuff2)
)

# ---------------------------------------------------------------------------
# Models: name, kind, formula, REML, data set

soy_fe <- "mAqE ~ ID + Date_num + I(Date_num^2)"
disk_fe <- "AqE ~ ID + days + I(days^2) + Precip + Precip_7day"

models <- list(
  list("pig_reml", "lmer", "weight ~ weeks + (1|id)", TRUE, "pig"),
  list("pig_ml", "lmer", "weight ~ weeks + (1|id)", FALSE, "pig"),
  list("pig_lm", "lm", "weight ~ weeks", FALSE, "pig"),

  list("nepal_ri", "lmer", "arm ~ age + (1|id)", TRUE, "nepal"),
  list("nepal_ri_ml", "lmer", "arm ~ age + (1|id)", FALSE, "nepal"),
  list("nepal_lit", "lmer", "arm ~ age + lit + (1|id)", TRUE, "nepal"),
  list("nepal_lm", "lm", "arm ~ age", FALSE, "nepal"),
  list("nepal_slope", "lmer", "arm ~ ageC + (ageC|id)", TRUE, "nepal"),
  list("nepal_slope_ml", "lmer", "arm ~ ageC + (ageC|id)", FALSE, "nepal"),
  list("nepal_indep", "lmer", "arm ~ ageC + (ageC||id)", TRUE, "nepal"),

  list("pulp_reml", "lmer", "bright ~ 1 + (1|operator)", TRUE, "pulp"),
  list("pulp_ml", "lmer", "bright ~ 1 + (1|operator)", FALSE, "pulp"),
  list("pulp_lm", "lm", "bright ~ 1", FALSE, "pulp"),

  list("soybean_lm", "lm", soy_fe, FALSE, "soybean"),
  list("soybean_plot", "lmer", paste(soy_fe, "+ (1|plot_number_year)"), FALSE, "soybean"),
  list("soybean_full", "lmer",
       paste(soy_fe, "+ Precip_cum + Precip_7day + Ta_7day + Fsd_7day + (1|plot_number_year)"),
       FALSE, "soybean"),

  list("disks_lm", "lm", disk_fe, FALSE, "soybean_disks"),
  list("disks_plot", "lmer", paste(disk_fe, "+ (1|plot_number)"), FALSE, "soybean_disks"),
  list("disks_full", "lmer", paste(disk_fe, "+ (1|plot_number) + (1|disk)"), FALSE, "soybean_disks"),

  list("sleepstudy_reml", "lmer", "Reaction ~ Days + (Days|Subject)", TRUE, "sleepstudy"),
  list("sleepstudy_ml", "lmer", "Reaction ~ Days + (Days|Subject)", FALSE, "sleepstudy"),
  list("sleepstudy_indep", "lmer", "Reaction ~ Days + (Days||Subject)", TRUE, "sleepstudy"),
  list("sleepstudy_nocorr0", "lmer", "Reaction ~ Days + (1|Subject) + (0+Days|Subject)", TRUE, "sleepstudy"),
  list("penicillin", "lmer", "diameter ~ 1 + (1|plate) + (1|sample)", TRUE, "Penicillin"),
  list("pastes_nested", "lmer", "strength ~ 1 + (1|batch/cask)", TRUE, "Pastes"),
  list("pastes_colon", "lmer", "strength ~ 1 + (1|batch) + (1|batch:cask)", TRUE, "Pastes"),
  list("dyestuff2", "lmer", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff2"),
  list("dyestuff", "lmer", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff")
)

# ---------------------------------------------------------------------------
# Helpers

fit_model <- function(kind, form, reml, data, control = lmerControl()) {
  if (kind == "lm") {
    lm(form, data = data)
  } else {
    lmer(form, data = data, REML = reml, control = control)
  }
}

common_fields <- function(m, name, kind, formula_str, reml, ds, data, form) {
  ll <- logLik(m)
  fe <- if (kind == "lm") coef(m) else fixef(m)
  V <- as.matrix(vcov(m))
  out <- c(list(name = name, kind = kind, formula = formula_str, reml = reml),
           data_fields(ds, data, form))
  out$nobs <- nobs(m)
  out$objective <- as.numeric(-2 * ll)
  out$beta <- list(names = I(names(fe)), values = I(unname(fe)))
  out$se <- I(unname(sqrt(diag(V))))
  out$vcov <- rows_of(V)
  out$sigma <- sigma(m)
  out$loglik <- as.numeric(ll)
  out$aic <- AIC(m)
  out$bic <- BIC(m)
  out$df <- attr(ll, "df")
  out$fitted <- I(unname(fitted(m)))
  out
}

lmer_fields <- function(out, m, m_tight) {
  th <- getME(m, "theta")
  out$objective_tight <- as.numeric(-2 * logLik(m_tight))
  out$theta <- I(unname(th))
  out$theta_names <- I(names(th))
  out$theta_tight <- I(unname(getME(m_tight, "theta")))
  out$beta_tight <- I(unname(fixef(m_tight)))
  out$sigma_tight <- sigma(m_tight)
  out$lower <- I(unname(getME(m, "lower")))
  ng <- ngrps(m)
  out$ngroups <- as.list(ng)
  out$singular <- isSingular(m)
  out$varcorr <- varcorr_rows(m)
  out$ranef <- ranef_rows(m)
  # Pieces of the profiled criterion (log-determinants, penalised RSS, ...)
  out$devcomp <- as.list(m@devcomp$cmp)
  out$optinfo <- optinfo_fields(m, m_tight)
  out
}

# ---------------------------------------------------------------------------
# Fit and write

r_version <- R.version.string
lme4_version <- as.character(packageVersion("lme4"))
fits <- list()
summary_rows <- list()

for (spec in models) {
  name <- spec[[1]]; kind <- spec[[2]]; formula_str <- spec[[3]]
  reml <- spec[[4]]; ds <- spec[[5]]
  data <- data_sets[[ds]]
  form <- as.formula(formula_str)
  fit <- with_notes(fit_model(kind, form, reml, data))
  m <- fit$value
  out <- common_fields(m, name, kind, formula_str, reml, ds, data, form)
  if (kind == "lmer") {
    m_tight <- with_notes(fit_model(kind, form, reml, data, control = LMER_TIGHT))$value
    out <- lmer_fields(out, m, m_tight)
  }
  out$warnings <- I(fit$notes)
  out$fit_seconds <- median_seconds(function() fit_model(kind, form, reml, data), N_TIMING)
  out$R_version <- r_version
  out$lme4_version <- lme4_version
  fits[[name]] <- m

  write_fixture_json(out, out_dir, name)

  summary_rows[[name]] <- data.frame(
    name = name, objective = out$objective,
    tight = if (kind == "lmer") out$objective_tight else NA_real_,
    aic = out$aic, fit_s = out$fit_seconds, stringsAsFactors = FALSE)
}

index <- list(
  R_version = r_version, lme4_version = lme4_version,
  models = I(vapply(models, `[[`, "", 1))
)
write_index_json(index, out_dir)

# ---------------------------------------------------------------------------
# Report

tab <- do.call(rbind, summary_rows)
rownames(tab) <- NULL
tab$rel_tight <- (tab$objective - tab$tight) / abs(tab$tight)
cat(r_version, "| lme4", lme4_version, "\n\n")
cat(sprintf("%-20s %18s %18s %10s %18s %9s\n", "name", "objective",
            "objective_tight", "rel_diff", "aic", "fit_s"))
for (i in seq_len(nrow(tab))) {
  cat(sprintf("%-20s %18.8f %18s %10s %18.8f %9.4f\n", tab$name[i],
              tab$objective[i],
              if (is.na(tab$tight[i])) "-" else sprintf("%.8f", tab$tight[i]),
              if (is.na(tab$rel_tight[i])) "-" else sprintf("%.1e", tab$rel_tight[i]),
              tab$aic[i], tab$fit_s[i]))
}
cat("\nmax relative (default - tight) objective:",
    format(max(abs(tab$rel_tight), na.rm = TRUE), digits = 3), "\n\n")

check <- function(label, got, want, tol) {
  ok <- abs(got - want) <= tol
  cat(sprintf("%-4s %-34s got %-14s want %s\n", if (ok) "ok" else "FAIL",
              label, format(got, digits = 8), format(want)))
  ok
}
vc <- function(name) {
  d <- as.data.frame(VarCorr(fits[[name]]))
  setNames(d$vcov, d$grp)
}
ok <- c(
  check("pig_reml id variance", vc("pig_reml")[["id"]], 15.1418, 5e-5),
  check("pig_reml residual variance", vc("pig_reml")[["Residual"]], 4.3947, 5e-5),
  check("nepal_ri (Intercept)", fixef(fits$nepal_ri)[[1]], 12.753789, 5e-7),
  check("nepal_ri age", fixef(fits$nepal_ri)[[2]], 0.031697, 5e-7),
  check("nepal_ri id variance", vc("nepal_ri")[["id"]], 0.780733, 5e-7),
  check("nepal_ri residual variance", vc("nepal_ri")[["Residual"]], 0.248067, 5e-7),
  check("pulp_reml operator variance", vc("pulp_reml")[["operator"]], 0.068083, 5e-7),
  check("pulp_reml residual variance", vc("pulp_reml")[["Residual"]], 0.106250, 5e-7),
  check("pulp_reml (Intercept)", fixef(fits$pulp_reml)[[1]], 60.4, 5e-3),
  check("pulp_reml SE", sqrt(vcov(fits$pulp_reml)[1, 1]), 0.1494, 5e-5),
  check("soybean_lm AIC", AIC(fits$soybean_lm), -190.9327, 5e-5),
  check("soybean_plot AIC", AIC(fits$soybean_plot), -239.5221, 5e-5),
  check("soybean_full AIC", AIC(fits$soybean_full), -415.3697, 5e-5)
)
cat(sprintf("\ncourse numbers: %d/%d reproduced\n", sum(ok), length(ok)))
