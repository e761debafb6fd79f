"""How a run of the optimiser ends: SciPy-worded messages for people, and a code for each, for callers."""

# Status codes and messages, worded like SciPy's L-BFGS-B.
_MSG_PGTOL = "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
_MSG_FTOL = "CONVERGENCE: REL_REDUCTION_OF_F <= FACTR*EPSMCH"
_MSG_MAXITER = "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
_MSG_MAXFUN = "STOP: TOTAL NO. OF f AND g EVALUATIONS EXCEEDS LIMIT"
_MSG_LINESEARCH = "ABNORMAL_TERMINATION_IN_LNSRCH: the line search found no lower point"
_MSG_NONFINITE = (
    "ABNORMAL: NON-FINITE VALUES: the objective or gradient was nan/inf along the "
    "search direction and no lower finite point was found"
)
_MSG_NONFINITE_X0 = "ABNORMAL: NON-FINITE VALUES: the objective or gradient is nan/inf at x0"
_MSG_CALLBACK = "`callback` raised `StopIteration`"

# Why a run ended, as a code callers can test (``OptimizeResult.reason``); the message is for people.
GRADIENT_VANISHED, LOSS_STALLED, ITERATION_LIMIT, EVALUATION_LIMIT = "gtol", "ftol", "maxiter", "maxfun"
LINE_SEARCH_FAILED, NON_FINITE, CALLBACK_STOP = "linesearch", "nonfinite", "callback"
REASONS = {_MSG_PGTOL: GRADIENT_VANISHED, _MSG_FTOL: LOSS_STALLED, _MSG_MAXITER: ITERATION_LIMIT,
           _MSG_MAXFUN: EVALUATION_LIMIT, _MSG_LINESEARCH: LINE_SEARCH_FAILED, _MSG_NONFINITE: NON_FINITE,
           _MSG_NONFINITE_X0: NON_FINITE, _MSG_CALLBACK: CALLBACK_STOP}
