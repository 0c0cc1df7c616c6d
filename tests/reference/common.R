# Helpers shared by the reference scripts in this folder. Each script sources it
# with
#
#   args <- commandArgs(trailingOnly = FALSE)
#   here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
#   source(file.path(here, "common.R"))
#
# Requires: r-cran-lme4, r-cran-jsonlite

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

# ---------------------------------------------------------------------------
# Command line

# The trailing arguments, named by `names`; stops with `usage` if their number
# is wrong. The output directory is created.
script_args <- function(usage, names = c("in_dir", "out_dir")) {
  args <- commandArgs(trailingOnly = TRUE)
  if (length(args) != length(names)) stop("usage: ", usage)
  args <- setNames(as.list(args), names)
  dir.create(args$out_dir, showWarnings = FALSE, recursive = TRUE)
  args
}

# R and lme4 versions, then the version of every package named in `...`.
version_fields <- function(...) {
  out <- list(R_version = R.version.string,
              lme4_version = as.character(packageVersion("lme4")))
  for (pkg in c(...)) out[[paste0(pkg, "_version")]] <- as.character(packageVersion(pkg))
  out
}

# nloptwrap with much tighter tolerances than lmerControl()'s defaults.
LMER_TIGHT <- lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0))

# ---------------------------------------------------------------------------
# Course data (the CSVs written by `python -m lmmlib.datasets export DIR`)

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

read_input <- function(in_dir, name) {
  path <- file.path(in_dir, paste0(name, ".csv"))
  if (!file.exists(path)) stop("missing input file: ", path)
  read.csv(path, stringsAsFactors = FALSE)
}

COURSE_SETS <- c("pig", "nepal", "pulp", "soybean", "soybean_disks")

# Columns computed in R that are not in the exported CSVs.
DERIVED <- list(nepal = list(ageC = "age - 36"))

prepare_course_data <- list(
  pig = function(d) {
    d$id <- as_factor(d$id)
    d
  },
  nepal = function(d) {
    d$id <- as_factor(d$id)
    d$ageC <- d$age - 36
    d
  },
  pulp = function(d) {
    d$operator <- as_factor(d$operator)
    d
  },
  soybean = function(d) {
    d$ID <- as_factor(d$ID, ref = "aRC")
    d$plot_number_year <- as_factor(d$plot_number_year)
    d
  },
  soybean_disks = function(d) {
    d$ID <- as_factor(d$ID, ref = "RC")
    d$plot_number <- as_factor(d$plot_number)
    d$disk <- as_factor(d$disk)
    d
  }
)

# The named course data sets, read from in_dir, with their factors and derived
# columns set up.
course_data <- function(in_dir, sets = COURSE_SETS) {
  lapply(setNames(sets, sets), function(s) prepare_course_data[[s]](read_input(in_dir, s)))
}

# ---------------------------------------------------------------------------
# Fitting

# Evaluate expr, keeping the warnings and/or messages R emits (e.g. "boundary
# (singular) fit") instead of printing them. Returns list(value, notes).
with_notes <- function(expr, warnings = TRUE, messages = TRUE) {
  notes <- character(0)
  on_warning <- function(w) {
    notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning")
  }
  on_message <- function(msg) {
    notes <<- c(notes, sub("\n$", "", conditionMessage(msg)))
    invokeRestart("muffleMessage")
  }
  value <- if (warnings && messages) {
    withCallingHandlers(expr, warning = on_warning, message = on_message)
  } else if (warnings) {
    withCallingHandlers(expr, warning = on_warning)
  } else {
    withCallingHandlers(expr, message = on_message)
  }
  list(value = value, notes = notes)
}

# Median elapsed seconds of n calls of fit() (warnings and messages suppressed).
median_seconds <- function(fit, n) {
  times <- vapply(seq_len(n), function(i) {
    unname(system.time(suppressWarnings(suppressMessages(fit())))[["elapsed"]])
  }, numeric(1))
  median(times)
}

# ---------------------------------------------------------------------------
# JSON fields

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

# The data frame as columns (factors as strings); only the columns named in
# form if it is given.
inline_data <- function(data, form = NULL) {
  if (!is.null(form)) data <- data[intersect(names(data), all.vars(form))]
  out <- lapply(data, function(col) {
    if (is.factor(col)) I(as.character(col)) else I(col)
  })
  names(out) <- names(data)
  out
}

# dataset, source_data, data (lme4 example data only), derived_columns and
# factors. inline_form: keep only the columns of this formula in `data`.
data_fields <- function(ds, data, form, inline_form = NULL) {
  csv <- ds %in% COURSE_SETS
  out <- list(dataset = if (csv) ds else "inline", source_data = ds)
  if (!csv) out$data <- inline_data(data, inline_form)
  if (!is.null(DERIVED[[ds]])) out$derived_columns <- DERIVED[[ds]]
  out$factors <- factor_levels(form, data)
  out
}

# The rows of as.data.frame(VarCorr(m)).
varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    group = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

# The rows of as.data.frame(ranef(m, condVar = TRUE)).
ranef_rows <- function(m) {
  re <- as.data.frame(ranef(m, condVar = TRUE))
  lapply(seq_len(nrow(re)), function(i) list(
    grpvar = as.character(re$grpvar[i]), term = as.character(re$term[i]),
    grp = as.character(re$grp[i]), condval = re$condval[i], condsd = re$condsd[i]))
}

# Function evaluations and convergence messages of the default and tight fits.
optinfo_fields <- function(m, m_tight, optimizer = m@optinfo$optimizer) {
  list(
    feval = m@optinfo$feval,
    optimizer = optimizer,
    messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
    feval_tight = m_tight@optinfo$feval,
    messages_tight = I(as.character(unlist(m_tight@optinfo$conv$lme4$messages)))
  )
}

# ---------------------------------------------------------------------------
# Writing

# OUT_DIR/<name>.json; numbers with 15 significant digits, NA and NULL as null.
write_fixture_json <- function(out, out_dir, name) {
  json <- toJSON(out, digits = NA, auto_unbox = TRUE, null = "null",
                 na = "null", pretty = TRUE)
  writeLines(json, file.path(out_dir, paste0(name, ".json")))
}

write_index_json <- function(index, out_dir) {
  writeLines(toJSON(index, auto_unbox = TRUE, pretty = TRUE),
             file.path(out_dir, "index.json"))
}
