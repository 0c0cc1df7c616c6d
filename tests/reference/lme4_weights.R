# Reference fits with prior weights and offsets from R's lme4, one JSON fixture
# per model, for the engine's weighted penalised least squares.
#
# Usage:
#   Rscript tests/reference/lme4_weights.R OUT_DIR
#
# The data are lme4's example data (sleepstudy, Penicillin, cbpp) with
# deterministic weight and offset columns added; the whole data frame is
# embedded in every fixture ("dataset": "inline").
#
# Fields: name, kind ("lmer" or "glmer"), family, formula (R syntax),
# python_formula (lmmlib's), reml, weights and offset (column names or null),
# offset_in_formula, data, objective (-2 logLik, the REML criterion for REML
# fits), theta, beta (names, values), se, sigma, and the same from a refit with
# much tighter tolerances (*_tight).
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

out_dir <- script_args("Rscript lme4_weights.R OUT_DIR", names = "out_dir")$out_dir

GLMER_TIGHT <- glmerControl(
  optimizer = "nloptwrap", tolPwrss = 1e-10,
  optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0, maxeval = 1e5)
)

sleep <- sleepstudy
sleep$Subject <- as.character(sleep$Subject)
sleep$w <- 1 + (sleep$Days %% 3) / 2
sleep$off <- 20 * sin(sleep$Days) + 10 * (as.integer(factor(sleep$Subject)) %% 3)

pen <- Penicillin
pen$plate <- as.character(pen$plate)
pen$sample <- as.character(pen$sample)
pen$w <- 1 + (as.integer(factor(pen$plate)) %% 4) / 4

cb <- cbpp
cb$herd <- as.character(cb$herd)
cb$period <- as.character(cb$period)
cb$lsize <- log(cb$size)

fields <- function(m, m_tight, name, kind, formula, py_formula, data, weights, offset,
                   family = NULL) {
  fe <- fixef(m)
  out <- list(name = name, kind = kind, family = family, formula = formula,
              python_formula = py_formula, reml = isREML(m), weights = weights,
              offset = offset, dataset = "inline", data = data,
              nobs = nobs(m),
              objective = -2 * as.numeric(logLik(m)),
              theta = unname(getME(m, "theta")),
              beta = list(names = I(names(fe)), values = I(unname(fe))),
              se = I(unname(sqrt(diag(as.matrix(vcov(m)))))),
              sigma = sigma(m),
              objective_tight = -2 * as.numeric(logLik(m_tight)),
              theta_tight = unname(getME(m_tight, "theta")),
              beta_tight = I(unname(fixef(m_tight))),
              se_tight = I(unname(sqrt(diag(as.matrix(vcov(m_tight)))))))
  if (kind == "lmer" && isREML(m)) out$objective <- unname(m@devcomp$cmp[["REML"]])
  if (kind == "lmer" && isREML(m)) out$objective_tight <- unname(m_tight@devcomp$cmp[["REML"]])
  c(out, version_fields())
}

index <- list()
lmer_case <- function(name, form, py_formula, data, reml, weights = NULL, offset = NULL) {
  # (names that are not columns: model.frame looks up weights and offset in the data first)
  prior_wt <- if (is.null(weights)) NULL else data[[weights]]
  known_off <- if (is.null(offset)) NULL else data[[offset]]
  fit <- function(ctrl) {
    lmer(as.formula(form), data = data, REML = reml, weights = prior_wt, offset = known_off, control = ctrl)
  }
  m <- fit(lmerControl())
  mt <- fit(LMER_TIGHT)
  out <- fields(m, mt, name, "lmer", form, py_formula, data, weights, offset)
  if (!is.null(offset)) {  # the offset is the response minus a known part
    data$.y_minus_offset <- model.response(model.frame(m)) - known_off
    manual <- lmer(update(as.formula(form), .y_minus_offset ~ .), data = data, REML = reml,
                   weights = prior_wt, control = LMER_TIGHT)
    out$objective_manual <- if (reml) REMLcrit(manual) else deviance(manual)
  }
  write_fixture_json(out, out_dir, name)
  index[[length(index) + 1]] <<- name
}

glmer_case <- function(name, form, py_formula, data, family, weights = NULL, offset = NULL) {
  # (names that are not columns: model.frame looks up weights and offset in the data first)
  prior_wt <- if (is.null(weights)) NULL else data[[weights]]
  known_off <- if (is.null(offset)) NULL else data[[offset]]
  fit <- function(ctrl) {
    glmer(as.formula(form), data = data, family = family, weights = prior_wt, offset = known_off,
          control = ctrl)
  }
  m <- fit(glmerControl())
  mt <- fit(GLMER_TIGHT)
  out <- fields(m, mt, name, "glmer", form, py_formula, data, weights, offset, family)
  write_fixture_json(out, out_dir, name)
  index[[length(index) + 1]] <<- name
}

lmer_case("sleep_weights_reml", "Reaction ~ Days + (Days | Subject)",
          "Reaction ~ Days + (Days | Subject)", sleep, TRUE, weights = "w")
lmer_case("sleep_weights_ml", "Reaction ~ Days + (Days | Subject)",
          "Reaction ~ Days + (Days | Subject)", sleep, FALSE, weights = "w")
lmer_case("sleep_offset", "Reaction ~ Days + (1 | Subject)",
          "Reaction ~ Days + (1 | Subject)", sleep, TRUE, offset = "off")
lmer_case("penicillin_weights", "diameter ~ 1 + (1 | plate) + (1 | sample)",
          "diameter ~ 1 + (1 | plate) + (1 | sample)", pen, TRUE, weights = "w")
glmer_case("cbpp_offset", "incidence ~ period + (1 | herd)",
           "incidence ~ period + (1 | herd)", cb, "poisson", offset = "lsize")

write_fixture_json(c(list(models = I(unlist(index))), version_fields()), out_dir, "index")
