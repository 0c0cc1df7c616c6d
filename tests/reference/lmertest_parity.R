# Reference tables for lme4/lmerTest/pbkrtest verbs: Type III anova (Satterthwaite
# and Kenward-Roger), drop1, hatvalues, cooks.distance, lmList and update.
#
# Usage:
#   Rscript tests/reference/lmertest_parity.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the CSVs written by `python -m lmmlib.datasets export DIR`
# (nepal.csv, soybean.csv); sleepstudy is embedded in its fixtures ("dataset":
# "inline"). Factors are set up as in common.R; in nepal, bf (breast-feeding,
# 3 codes and 7 missing values) is made a factor here (levels 0, 1, 2) after
# dropping its missing rows (field rows_kept), and fsex is sex (1, 2) as a factor.
#
# One JSON file per model. The Type III tables come from fits with tight
# nloptwrap tolerances (as lmertest.R), and each file records that fit's theta
# and sigma so that the tables can be recomputed at exactly that point.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest
#           r-cran-pbkrtest r-cran-jsonlite

suppressPackageStartupMessages({
  library(lmerTest)
  library(pbkrtest)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

args <- script_args("Rscript lmertest_parity.R INPUT_DIR OUT_DIR")
out_dir <- args$out_dir

data_sets <- c(course_data(args$in_dir, c("nepal", "soybean")),
               list(sleepstudy = lme4::sleepstudy))
# bf is missing for 7 rows: they are dropped first (drop1 needs the same rows in every fit)
data_sets$nepal <- data_sets$nepal[!is.na(data_sets$nepal$bf), ]
data_sets$nepal$bf <- factor(data_sets$nepal$bf, levels = sort(unique(data_sets$nepal$bf)))
data_sets$nepal$fsex <- factor(data_sets$nepal$sex)  # sex (1, 2) as a factor

versions <- version_fields("lmerTest", "pbkrtest", "numDeriv")

# An anova/drop1 table as rows, columns and values (NA as null).
table_fields <- function(tab) {
  tab <- as.data.frame(tab)
  list(rows = I(rownames(tab)), columns = I(colnames(tab)),
       values = lapply(setNames(as.list(colnames(tab)), colnames(tab)),
                       function(c) I(unname(tab[[c]]))))
}

# ---------------------------------------------------------------------------
# Type III anova and drop1 of course models

anova_models <- list(
  list("anova_soybean", "mAqE ~ ID + Date_num + I(Date_num^2) + (1|plot_number_year)",
       "soybean"),
  list("anova_nepal", "arm ~ age + bf + sex + (1|id)", "nepal"),
  # interactions: age is contained in age:bf (same numeric variable), bf is not
  list("anova_nepal_int", "arm ~ age * bf + sex + (1|id)", "nepal"),
  # factor by factor: bf and fsex are both contained in bf:fsex
  list("anova_nepal_ff", "arm ~ bf * fsex + age + (1|id)", "nepal"),
  # a single term: lmerTest's Type III uses its Type I contrasts
  list("anova_nepal_single", "arm ~ bf + (1|id)", "nepal"),
  # correlated and uncorrelated random slopes: KR's covariance parameters per term
  list("anova_sleep_slope", "Reaction ~ Days + I(Days^2) + (Days|Subject)", "sleepstudy"),
  list("anova_sleep_indep", "Reaction ~ Days + I(Days^2) + (Days||Subject)", "sleepstudy")
)

for (spec in anova_models) {
  name <- spec[[1]]; formula_str <- spec[[2]]; ds <- spec[[3]]
  data <- data_sets[[ds]]
  form <- as.formula(formula_str)
  m <- lmerTest::lmer(form, data = data, REML = TRUE, control = LMER_TIGHT)
  out <- c(list(name = name, formula = formula_str, reml = TRUE),
           data_fields(ds, data, form))
  if (ds == "nepal") {
    out$rows_kept <- "!is.na(bf)"
    out$derived_columns <- c(out$derived_columns, list(fsex = "factor(sex)"))
  }
  out$nobs <- nobs(m)
  out$theta <- I(unname(getME(m, "theta")))
  out$sigma <- sigma(m)
  out$objective <- -2 * as.numeric(logLik(m))  # the REML criterion
  out$satterthwaite <- table_fields(anova(m, type = "III"))
  out$kenward_roger <- table_fields(anova(m, type = "III", ddf = "Kenward-Roger"))
  out$type2 <- table_fields(anova(m, type = "II"))
  out$type1 <- table_fields(anova(m, type = "I"))
  out$type2_kr <- table_fields(anova(m, type = "II", ddf = "Kenward-Roger"))
  out$drop1_f <- table_fields(drop1(m))
  kr_coef <- coef(summary(m, ddf = "Kenward-Roger"))
  out$coef_kr <- list(names = I(rownames(kr_coef)),
                      values = lapply(setNames(as.list(colnames(kr_coef)), colnames(kr_coef)),
                                      function(c) I(unname(kr_coef[, c]))))
  # lme4's drop1 (LRT of ML refits): the merMod method, not lmerTest's
  m4 <- lme4::lmer(form, data = data, REML = TRUE, control = LMER_TIGHT)
  d1 <- drop1(m4, test = "Chisq")
  out$drop1_chisq <- table_fields(d1)
  out$deviance_ml <- unname(deviance(refitML(m4)))
  out <- c(out, versions)
  write_fixture_json(out, out_dir, name)
  cat(name, "\n"); print(out$satterthwaite$values$DenDF); print(out$kenward_roger$values$DenDF)
}

# ---------------------------------------------------------------------------
# Influence: hatvalues and cooks.distance (lme4's merMod methods)

sleep <- data_sets$sleepstudy
influence_fixture <- function(name, formula_str, reml) {
  form <- as.formula(formula_str)
  m <- lme4::lmer(form, data = sleep, REML = reml, control = LMER_TIGHT)
  h <- unname(hatvalues(m))
  cd <- unname(cooks.distance(m))
  out <- c(list(name = name, formula = formula_str, reml = reml),
           data_fields("sleepstudy", sleep, form, inline_form = form))
  out$theta <- I(unname(getME(m, "theta")))
  out$sigma <- sigma(m)
  out$hatvalues <- I(h)
  out$cooks_distance <- I(cd)
  out$hat_sum <- sum(h)
  out$cooks_sum <- sum(cd)
  out <- c(out, versions)
  write_fixture_json(out, out_dir, name)
}
influence_fixture("influence_sleepstudy", "Reaction ~ Days + (Days|Subject)", TRUE)
influence_fixture("influence_sleepstudy_ml", "Reaction ~ Days + (1|Subject)", FALSE)

# ---------------------------------------------------------------------------
# lmList on sleepstudy (pooled sigma: lme4's default)

ll <- lmList(Reaction ~ Days | Subject, data = sleep)
cf <- coef(ll)
# arrays group x bound x parameter. confint(ll) looks up object$pool, which is NULL
# for an lmList4 (pool is an attribute), so lme4's default intervals are per group
ci <- confint(ll, pool = TRUE)
ci_sep <- confint(ll)
out <- c(list(name = "lmlist_sleepstudy", formula = "Reaction ~ Days | Subject"),
         data_fields("sleepstudy", sleep, Reaction ~ Days + Subject,
                     inline_form = Reaction ~ Days + Subject))
out$groups <- I(rownames(cf))
out$coef <- lapply(setNames(as.list(colnames(cf)), colnames(cf)), function(c) I(cf[[c]]))
out$pooled_sd <- unname(as.numeric(lme4:::pooledSD(ll)))
out$pooled_df <- attr(lme4:::pooledSD(ll), "df")
ci_fields <- function(ci) {
  lapply(setNames(as.list(dimnames(ci)[[3]]), dimnames(ci)[[3]]),
         function(p) list(lower = I(unname(ci[, 1, p])), upper = I(unname(ci[, 2, p]))))
}
out$confint_pooled <- ci_fields(ci)
out$confint_separate <- ci_fields(ci_sep)
out <- c(out, versions)
write_fixture_json(out, out_dir, "lmlist_sleepstudy")

# ---------------------------------------------------------------------------
# update(): refits with changed formula, data or REML

fm1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleep, control = LMER_TIGHT)
coef_of <- function(m) if (inherits(m, "merMod")) fixef(m) else coef(m)
fit_fields <- function(m) {
  out <- list(formula = paste(deparse(formula(m)), collapse = " "),
              beta_names = I(names(coef_of(m))), beta = I(unname(coef_of(m))),
              nobs = nobs(m))
  if (inherits(m, "merMod")) {
    out$reml <- isREML(m)
    out$objective <- -2 * as.numeric(logLik(m))  # REML criterion or deviance
    out$theta <- I(unname(getME(m, "theta")))
  } else {
    out$reml <- FALSE
    out$objective <- -2 * as.numeric(logLik(m))
  }
  out
}
days_pos <- sleep[sleep$Days > 0, ]
updates <- list(
  minus_days = update(fm1, . ~ . - Days),
  plus_square = update(fm1, . ~ . + I(Days^2)),
  new_random = update(fm1, . ~ . - (Days | Subject) + (1 | Subject)),
  ml = update(fm1, REML = FALSE),
  new_data = update(fm1, data = days_pos),
  new_response = update(fm1, log(Reaction) ~ .),
  lm_plus = update(lm(Reaction ~ Days, sleep), . ~ . + I(Days^2))
)
out <- c(list(name = "update_sleepstudy", formula = "Reaction ~ Days + (Days | Subject)"),
         data_fields("sleepstudy", sleep, Reaction ~ Days + Subject,
                     inline_form = Reaction ~ Days + Subject))
out$updates <- lapply(updates, fit_fields)
out <- c(out, versions)
write_fixture_json(out, out_dir, "update_sleepstudy")

index <- c(list(models = I(c(vapply(anova_models, `[[`, "", 1), "influence_sleepstudy",
                             "influence_sleepstudy_ml", "lmlist_sleepstudy",
                             "update_sleepstudy"))), versions)
write_index_json(index, out_dir)
