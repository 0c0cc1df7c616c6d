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

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) {
  stop("usage: Rscript lme4_goldens.R INPUT_DIR OUT_DIR")
}
in_dir <- args[[1]]
out_dir <- args[[2]]
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

N_TIMING <- 11L
TIGHT <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0))

# Factor levels are sorted with method = "radix", which always uses C-locale
# (byte) order. R's default sort() depends on the collation locale, so this
# keeps level order the same on every machine (and equal to Python's sorted()
# for ASCII labels). Integer codes are sorted numerically.
as_factor <- function(x, ref = NULL) {
  lev <- sort(unique(x), method = "radix")
  f <- factor(x, levels = lev)
  if (!is.null(ref)) f <- relevel(f, ref = ref)
  f
}

read_input <- function(name) {
  path <- file.path(in_dir, paste0(name, ".csv"))
  if (!file.exists(path)) stop("missing input file: ", path)
  read.csv(path, stringsAsFactors = FALSE)
}

# ---------------------------------------------------------------------------
# Data

pig <- read_input("pig")
pig$id <- as_factor(pig$id)

nepal <- read_input("nepal")
nepal$id <- as_factor(nepal$id)
nepal$ageC <- nepal$age - 36

pulp <- read_input("pulp")
pulp$operator <- as_factor(pulp$operator)

soybean <- read_input("soybean")
soybean$ID <- as_factor(soybean$ID, ref = "aRC")
soybean$plot_number_year <- as_factor(soybean$plot_number_year)

disks <- read_input("soybean_disks")
disks$ID <- as_factor(disks$ID, ref = "RC")
disks$plot_number <- as_factor(disks$plot_number)
disks$disk <- as_factor(disks$disk)

data_sets <- list(
  pig = pig, nepal = nepal, pulp = pulp, soybean = soybean,
  soybean_disks = disks,
  sleepstudy = lme4::sleepstudy, Penicillin = lme4::Penicillin,
  Pastes = lme4::Pastes, Dyestuff = lme4::Dyestuff, Dyestuff2 = lme4::Dyestuff2
)
csv_sets <- c("pig", "nepal", "pulp", "soybean", "soybean_disks")

# Columns computed in R that are not in the exported CSVs.
derived <- list(nepal = list(ageC = "age - 36"))

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

# Fit once, keeping the warnings and messages R emits (e.g. "boundary
# (singular) fit", "Some predictor variables are on very different scales").
fit_logged <- function(kind, form, reml, data, control = lmerControl()) {
  notes <- character(0)
  m <- withCallingHandlers(
    fit_model(kind, form, reml, data, control),
    warning = function(w) {
      notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning")
    },
    message = function(msg) {
      notes <<- c(notes, sub("\n$", "", conditionMessage(msg)))
      invokeRestart("muffleMessage")
    })
  list(model = m, notes = notes)
}

median_fit_seconds <- function(kind, form, reml, data) {
  times <- vapply(seq_len(N_TIMING), function(i) {
    unname(system.time(suppressWarnings(suppressMessages(
      fit_model(kind, form, reml, data))))[["elapsed"]])
  }, numeric(1))
  median(times)
}

rows_of <- function(m) {
  m <- unname(as.matrix(m))
  lapply(seq_len(nrow(m)), function(i) I(m[i, ]))
}

factor_levels <- function(form, data) {
  cols <- intersect(all.vars(form), names(data))
  cols <- cols[vapply(cols, function(v) is.factor(data[[v]]), logical(1))]
  out <- lapply(cols, function(v) I(levels(data[[v]])))
  names(out) <- cols
  out
}

inline_data <- function(data) {
  out <- lapply(data, function(col) {
    if (is.factor(col)) I(as.character(col)) else I(col)
  })
  names(out) <- names(data)
  out
}

common_fields <- function(m, name, kind, formula_str, reml, ds, data, form) {
  ll <- logLik(m)
  fe <- if (kind == "lm") coef(m) else fixef(m)
  V <- as.matrix(vcov(m))
  out <- list(
    name = name,
    kind = kind,
    formula = formula_str,
    reml = reml,
    dataset = if (ds %in% csv_sets) ds else "inline",
    source_data = ds
  )
  if (!(ds %in% csv_sets)) out$data <- inline_data(data)
  if (!is.null(derived[[ds]])) out$derived_columns <- derived[[ds]]
  out$factors <- factor_levels(form, data)
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
  vc <- as.data.frame(VarCorr(m))
  out$varcorr <- lapply(seq_len(nrow(vc)), function(i) list(
    group = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  out$ranef <- lapply(seq_len(nrow(re)), function(i) list(
    grpvar = as.character(re$grpvar[i]), term = as.character(re$term[i]),
    grp = as.character(re$grp[i]), condval = re$condval[i], condsd = re$condsd[i]))
  # Pieces of the profiled criterion (log-determinants, penalised RSS, ...)
  out$devcomp <- as.list(m@devcomp$cmp)
  out$optinfo <- list(
    feval = m@optinfo$feval,
    optimizer = m@optinfo$optimizer,
    messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
    feval_tight = m_tight@optinfo$feval,
    messages_tight = I(as.character(unlist(m_tight@optinfo$conv$lme4$messages)))
  )
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
  fit <- fit_logged(kind, form, reml, data)
  m <- fit$model
  out <- common_fields(m, name, kind, formula_str, reml, ds, data, form)
  if (kind == "lmer") {
    m_tight <- fit_logged(kind, form, reml, data, control = TIGHT)$model
    out <- lmer_fields(out, m, m_tight)
  }
  out$warnings <- I(fit$notes)
  out$fit_seconds <- median_fit_seconds(kind, form, reml, data)
  out$R_version <- r_version
  out$lme4_version <- lme4_version
  fits[[name]] <- m

  json <- toJSON(out, digits = NA, auto_unbox = TRUE, null = "null",
                 na = "null", pretty = TRUE)
  writeLines(json, file.path(out_dir, paste0(name, ".json")))

  summary_rows[[name]] <- data.frame(
    name = name, objective = out$objective,
    tight = if (kind == "lmer") out$objective_tight else NA_real_,
    aic = out$aic, fit_s = out$fit_seconds, stringsAsFactors = FALSE)
}

index <- list(
  R_version = r_version, lme4_version = lme4_version,
  models = I(vapply(models, `[[`, "", 1))
)
writeLines(toJSON(index, auto_unbox = TRUE, pretty = TRUE),
           file.path(out_dir, "index.json"))

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
