# Reference t-tests for fixed effects from R's lmerTest (Satterthwaite df).
#
# Usage:
#   Rscript tests/reference/lmertest.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the cleaned CSVs written by `python -m lmmlib.datasets export DIR`
# (pig.csv, nepal.csv, soybean.csv, soybean_disks.csv). The lme4 example data
# (sleepstudy, Penicillin, Dyestuff2) are embedded in their fixtures
# ("dataset": "inline"). Factors are set up as in lme4_goldens.R.
#
# One JSON file per model holds coef(summary(m)) of the lmerTest fit (its
# default: Satterthwaite df), plus the pieces lmerTest computes them from:
# theta, sigma, vcov_varpar (2 H^-1, H the numDeriv Hessian of the REML
# criterion or deviance in (theta, sigma)) and the diagonal of the Jacobian of
# vcov(beta) with respect to each of (theta, sigma).
#
# The main entries come from a fit with tight nloptwrap tolerances (as the
# *_tight values of lme4_goldens.R): with lme4's default tolerances theta can
# stop 6e-4 (relative) short of the optimum (nepal_slope), which moves the SEs
# by 4e-5 and small p-values by several per cent. The default fit's table is
# kept as coef_default (with theta_default, sigma_default) for comparison.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-jsonlite

suppressPackageStartupMessages({
  library(lmerTest)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) {
  stop("usage: Rscript lmertest.R INPUT_DIR OUT_DIR")
}
in_dir <- args[[1]]
out_dir <- args[[2]]
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

TIGHT <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0))

# C-locale level order (as lme4_goldens.R); numeric codes sort numerically.
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

soybean <- read_input("soybean")
soybean$ID <- as_factor(soybean$ID, ref = "aRC")
soybean$plot_number_year <- as_factor(soybean$plot_number_year)

disks <- read_input("soybean_disks")
disks$ID <- as_factor(disks$ID, ref = "RC")
disks$plot_number <- as_factor(disks$plot_number)
disks$disk <- as_factor(disks$disk)

data_sets <- list(
  pig = pig, nepal = nepal, soybean = soybean, soybean_disks = disks,
  sleepstudy = lme4::sleepstudy, Penicillin = lme4::Penicillin,
  Dyestuff2 = lme4::Dyestuff2
)
csv_sets <- c("pig", "nepal", "soybean", "soybean_disks")
derived <- list(nepal = list(ageC = "age - 36"))

# ---------------------------------------------------------------------------
# Models: name, formula, REML, data set

models <- list(
  list("nepal_lit", "arm ~ age + lit + (1|id)", TRUE, "nepal"),
  list("nepal_slope", "arm ~ ageC + (ageC|id)", TRUE, "nepal"),
  list("pig_reml", "weight ~ weeks + (1|id)", TRUE, "pig"),
  list("sleepstudy_reml", "Reaction ~ Days + (Days|Subject)", TRUE, "sleepstudy"),
  list("sleepstudy_ml", "Reaction ~ Days + (Days|Subject)", FALSE, "sleepstudy"),
  list("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", TRUE, "Penicillin"),
  list("soybean_reml", "mAqE ~ ID + Date_num + I(Date_num^2) + (1|plot_number_year)",
       TRUE, "soybean"),
  list("disks_reml",
       "AqE ~ ID + days + I(days^2) + Precip + Precip_7day + (1|plot_number) + (1|disk)",
       TRUE, "soybean_disks"),
  # boundary fit: theta = 0 (lmerTest still computes the df)
  list("dyestuff2", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff2")
)

# ---------------------------------------------------------------------------
# Helpers

# Fit, keeping the warnings and messages R emits.
fit_logged <- function(form, reml, data, control = lmerControl()) {
  notes <- character(0)
  m <- withCallingHandlers(
    lmerTest::lmer(form, data = data, REML = reml, control = control),
    warning = function(w) {
      notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning")
    },
    message = function(msg) {
      notes <<- c(notes, sub("\n$", "", conditionMessage(msg)))
      invokeRestart("muffleMessage")
    })
  list(model = m, notes = notes)
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

coef_fields <- function(tab) {
  list(
    names = I(rownames(tab)),
    estimate = I(unname(tab[, "Estimate"])),
    se = I(unname(tab[, "Std. Error"])),
    df = I(unname(tab[, "df"])),
    t = I(unname(tab[, "t value"])),
    p = I(unname(tab[, "Pr(>|t|)"]))
  )
}

inline_data <- function(data, form) {
  data <- data[intersect(names(data), all.vars(form))]
  out <- lapply(data, function(col) {
    if (is.factor(col)) I(as.character(col)) else I(col)
  })
  names(out) <- names(data)
  out
}

# ---------------------------------------------------------------------------
# Fit and write

versions <- list(
  R_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  lmerTest_version = as.character(packageVersion("lmerTest")),
  numDeriv_version = as.character(packageVersion("numDeriv"))
)

for (spec in models) {
  name <- spec[[1]]; formula_str <- spec[[2]]; reml <- spec[[3]]; ds <- spec[[4]]
  data <- data_sets[[ds]]
  form <- as.formula(formula_str)
  fit <- fit_logged(form, reml, data, control = TIGHT)
  m <- fit$model
  m_default <- fit_logged(form, reml, data)$model
  tab <- coef(summary(m))
  out <- list(
    name = name, formula = formula_str, reml = reml,
    dataset = if (ds %in% csv_sets) ds else "inline",
    source_data = ds
  )
  if (!(ds %in% csv_sets)) out$data <- inline_data(data, form)
  if (!is.null(derived[[ds]])) out$derived_columns <- derived[[ds]]
  out$factors <- factor_levels(form, data)
  out$nobs <- nobs(m)
  out$coef <- coef_fields(tab)
  out$theta <- I(unname(getME(m, "theta")))
  out$sigma <- sigma(m)
  out$singular <- isSingular(m)
  out$vcov_varpar <- rows_of(m@vcov_varpar)
  out$jacobian_diag <- lapply(m@Jac_list, function(J) I(diag(J)))
  out$warnings <- I(fit$notes)
  out$coef_default <- coef_fields(coef(summary(m_default)))
  out$theta_default <- I(unname(getME(m_default, "theta")))
  out$sigma_default <- sigma(m_default)
  out <- c(out, versions)
  json <- toJSON(out, digits = NA, auto_unbox = TRUE, null = "null",
                 na = "null", pretty = TRUE)
  writeLines(json, file.path(out_dir, paste0(name, ".json")))
  cat(sprintf("%-16s df: %s\n", name,
              paste(format(tab[, "df"], digits = 8), collapse = " ")))
}

index <- c(list(models = I(vapply(models, `[[`, "", 1))), versions)
writeLines(toJSON(index, auto_unbox = TRUE, pretty = TRUE),
           file.path(out_dir, "index.json"))
