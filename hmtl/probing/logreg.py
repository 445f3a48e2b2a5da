"""Many L2-regularized logistic regressions on the same features at once, with a batched L-BFGS.

Problem ``r`` minimizes ``mean_n loss(x_n, y_n) + l2_r / 2 * |W_r|^2`` (the intercepts are not penalized): with
``binary`` one logit per sample and the logistic loss, else one logit per class and the softmax cross-entropy.
That is scikit-learn's ``LogisticRegression`` objective, ``C * sum_n loss + |W|^2 / 2``, divided by ``C * n``, with
``l2_r = 1 / (C_r * n)``; scikit-learn too fits a single weight vector when there are two classes.

The solver follows scikit-learn's lbfgs path (``scipy.optimize.minimize(method="L-BFGS-B")``, no bounds): weights
and intercepts start at zero; the first step goes along ``-g`` with length 1 (a step of ``1 / |g|``), later ones try
the quasi-Newton step ``-H g`` with step 1 first; ``H`` comes from the last ``history`` (10) correction pairs,
scaled by ``s'y / y'y``; the line search looks for a strong-Wolfe point (sufficient decrease ``1e-3``, curvature
``0.9``); a problem stops when its largest absolute gradient entry is at most ``gtol`` (1e-4), when its loss falls
by less than 64 float64 epsilons (relative), or after ``max_iter`` (100) iterations. Being the same algorithm from
the same start, it stops near where scikit-learn stops, also where neither has converged, which its default
``max_iter=100`` often does on unstandardized features; the line search itself (Nocedal and Wright's 3.5/3.6 rather
than MINPACK's ``dcsrch``) and float32 arithmetic for the products with the features make the paths differ a little.

Speed: every problem keeps its own history, step and stopping point, but all run in one loop on whole tensors, and
problems that have stopped leave the batch. Each iteration costs two matrix products with the features for all
problems together: the scores along the search direction, ``X d`` (a trial step ``t`` then only needs
``X theta + t X d``, so the line search costs no product with the features at all), and the gradient at the point
accepted. The quasi-Newton direction uses the compact representation of Byrd, Nocedal and Schnabel (1994): a few
batched products with the stored pairs, whatever the history length. The few problems whose first trial step fails
search on one at a time, in Python floats. A ``Preconditioner`` changes variables (for the builtin protocol, which
wants the optimum and not scikit-learn's path): a per-parameter scale, optionally after an orthogonal rotation of the
weights, applied to the parameters (a ``D x D`` product per problem), never to the ``N x D`` features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

F64 = torch.float64


@dataclass
class LogRegFit:
    """The fitted problems: ``weight (R, K, D)`` and ``bias (R, K)`` (``K`` = 1 for binary problems), the number
    of iterations each ran, whether it met ``gtol``, and its final objective."""

    weight: torch.Tensor
    bias: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor
    loss: torch.Tensor
    binary: bool

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(R, N, C)`` class scores; for binary problems ``C`` = 2 with the first column 0 (argmax is the class,
        the first one on a tie, as scikit-learn's ``decision_function > 0``)."""
        x = x.to("cpu", self.weight.dtype)
        scores = torch.einsum("nd,rkd->rnk", x, self.weight) + self.bias.unsqueeze(1)
        if self.binary:
            scores = torch.cat([torch.zeros_like(scores), scores], dim=-1)
        return scores


@dataclass
class Preconditioner:
    """The change of variables ``theta = P u``: per problem and class, the weights ``scale[..., :D] * u[..., :D]``
    rotated by ``rotation`` (``(D, D)``, orthogonal: ``w = (scale * u) @ rotation.T``) and the intercept
    ``scale[..., D] * u[..., D]``. ``scale`` is ``(R, K * (D + 1))``. An orthogonal rotation keeps ``|w|``, so the
    L2 penalty stays diagonal in ``u``: ``l2 * scale^2``."""

    scale: torch.Tensor
    rotation: torch.Tensor | None = None

    def select(self, keep: torch.Tensor) -> "Preconditioner":
        return Preconditioner(self.scale[keep], self.rotation)

    def _rotate(self, params: torch.Tensor, d: int, matrix: torch.Tensor) -> torch.Tensor:
        r = params.shape[0]
        params = params.view(r, -1, d + 1).clone()
        params[..., :-1] = params[..., :-1] @ matrix
        return params.view(r, -1)

    def forward(self, u: torch.Tensor, d: int) -> torch.Tensor:
        """``u (r, P)`` -> ``theta (r, P)``."""
        theta = u * self.scale
        return theta if self.rotation is None else self._rotate(theta, d, self.rotation.t())

    def adjoint(self, grad: torch.Tensor, d: int) -> torch.Tensor:
        """A gradient with respect to ``theta`` -> the gradient with respect to ``u``."""
        if self.rotation is not None:
            grad = self._rotate(grad, d, self.rotation)
        return grad * self.scale


LOG2E = 1.4426950408889634  # softmax in base 2: exp2 is about twice as fast as exp on CPUs
LN2 = 0.6931471805599453


class _Data:
    """The features and targets of a set of problems. Scores are class-major, ``(r, K, N)``; softmax scores are
    kept in base-2 units (``log2(e) * z``, from pre-scaled parameters) so that ``exp2`` replaces ``exp``. The
    features are used as given (the scores' product reads them transposed), never copied."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, classes: int, binary: bool, dtype: torch.dtype):
        self.x = x.detach().to("cpu", dtype).contiguous()
        self.n, self.d = self.x.shape
        self.k = 1 if binary else classes
        self.binary = binary
        self.unit = 1.0 if binary else LOG2E  # score units per nat
        y = y.detach().to("cpu", torch.long)
        if binary:
            self.target = y.to(dtype).view(1, 1, self.n)
        else:
            self.index = y.view(1, 1, self.n)
            self.onehot = F.one_hot(y, classes).to(dtype).t().contiguous().view(1, classes, self.n) / self.n

    def scores(self, params: torch.Tensor) -> torch.Tensor:
        """``params (r, K * (D + 1))`` (per class its weights, then its intercept) -> scores ``(r, K, N)``."""
        r = params.shape[0]
        params = params.view(r * self.k, self.d + 1).to(self.x.dtype)
        if not self.binary:
            params = params * self.unit
        return torch.addmm(params[:, -1:], params[:, :-1], self.x.t()).view(r, self.k, self.n)

    def loss(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean data loss per problem (float64) and the residual ``d loss / d z`` divided by ``N``, ``(r, K, N)``."""
        n = self.n
        if self.binary:  # log(1 + e^z) - t z and its derivative sigmoid(z) - t
            losses = torch.sub(F.softplus(scores), self.target * scores).sum(dim=(1, 2), dtype=F64)
            return losses.div_(n), torch.sigmoid(scores).sub_(self.target).div_(n)
        r = scores.shape[0]
        top = scores.amax(1, keepdim=True)
        picked = scores.gather(1, self.index.expand(r, 1, n))
        probabilities = torch.sub(scores, top).exp2_()
        total = probabilities.sum(1, keepdim=True)
        losses = (top - picked).add_(total.log2()).sum(dim=(1, 2), dtype=F64).mul_(LN2 / n)
        return losses, probabilities.div_(total.mul_(n)).sub_(self.onehot)

    def gradient(self, residual: torch.Tensor) -> torch.Tensor:
        """The data loss's gradient ``(r, K * (D + 1))`` (float64) from the ``residual`` of its scores."""
        r, k, d = residual.shape[0], self.k, self.d
        grad = torch.empty(r, k, d + 1, dtype=F64)
        grad[..., :-1] = torch.mm(residual.view(r * k, self.n), self.x).view(r, k, d)
        grad[..., -1] = residual.sum(-1)
        return grad.view(r, -1)


def _cubic_min(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float | None:
    """Minimizer of the cubic through ``(a, fa, da)`` and ``(b, fb, db)``; None where it has none."""
    d1 = da + db - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if disc < 0:
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    denominator = db - da + 2 * d2
    if denominator == 0:
        return None
    return b - (b - a) * (db + d2 - d1) / denominator


def _line_search(evaluate, f0: float, slope: float, t: float, first, c1: float, c2: float, max_evals: int):
    """The strong-Wolfe search of one problem whose first trial failed (Nocedal and Wright's algorithms 3.5 and
    3.6: extrapolate until the minimum is bracketed, then zoom in by safeguarded cubic interpolation), in Python
    floats. ``evaluate(t) -> (f, g, payload)``; ``first``, that of the first trial. Returns ``(t, payload)`` of the
    lowest point with sufficient decrease (a strong-Wolfe point when one was found), or None."""
    lo, f_lo, g_lo = 0.0, f0, slope
    hi, f_hi, g_hi = math.inf, 0.0, 0.0
    best = None
    f_t, g_t, payload = first
    for evaluation in range(max_evals):
        if f_t <= f0 + c1 * t * slope and f_t < f_lo:
            best = (t, payload)
            if abs(g_t) <= -c2 * slope:
                return best
            if g_t * (hi - lo) >= 0:
                hi, f_hi, g_hi = lo, f_lo, g_lo
            lo, f_lo, g_lo = t, f_t, g_t
        else:
            hi, f_hi, g_hi = t, f_t, g_t
        if math.isinf(hi):  # not bracketed yet: the step was too short
            t = 4 * t
        else:
            width = abs(hi - lo)
            if width <= 1e-10 * max(abs(lo), abs(hi)) or evaluation == max_evals - 1:
                break
            guess = _cubic_min(lo, f_lo, g_lo, hi, f_hi, g_hi)
            low_end, high_end = min(lo, hi) + 0.1 * width, max(lo, hi) - 0.1 * width
            t = (lo + hi) / 2 if guess is None or not math.isfinite(guess) else min(max(guess, low_end), high_end)
        f_t, g_t, payload = evaluate(t)
    return best


class _History:
    """The last ``m`` correction pairs of every problem. The pairs sit in a ring, ``pairs[:, :m]`` the steps ``s``
    and ``pairs[:, m:]`` the gradient changes ``y`` (every problem appends at each iteration, a rejected pair as
    zeros); the small matrices ``S'Y`` (upper triangle) and ``Y'Y`` are kept in chronological order."""

    def __init__(self, r: int, p: int, m: int):
        self.m, self.count, self.size = m, 0, 0
        self.pairs = torch.zeros(r, 2 * m, p, dtype=F64)
        self.sy = torch.zeros(r, m, m, dtype=F64)
        self.yy = torch.zeros(r, m, m, dtype=F64)
        self.valid = torch.zeros(r, m, dtype=torch.bool)
        self.gamma = torch.ones(r, dtype=F64)
        self.index = torch.zeros(0, dtype=torch.long)  # ring slots of s then y, oldest first
        self.all_valid = True  # every stored pair accepted (the usual case: no masking needed)
        self.usable = torch.zeros(r, dtype=torch.bool)  # at least one accepted pair

    def select(self, keep: torch.Tensor) -> None:
        for name in ("pairs", "sy", "yy", "valid", "gamma", "usable"):
            setattr(self, name, getattr(self, name)[keep])

    def push(self, s: torch.Tensor, y: torch.Tensor, good: torch.Tensor, sy: torch.Tensor, yy: torch.Tensor,
             all_good: bool) -> None:
        m, slot = self.m, self.count % self.m
        if not all_good:
            keep = good.to(F64).unsqueeze(1)
            s, y = s * keep, y * keep
        self.pairs[:, slot] = s
        self.pairs[:, m + slot] = y
        self.count += 1
        full = self.size == m
        self.size = min(self.count, m)
        order = torch.arange(self.count - self.size, self.count) % m
        self.index = torch.cat([order, order + m])
        products = torch.bmm(self.pairs, y.unsqueeze(-1)).squeeze(-1)[:, self.index]  # s_i . y, then y_i . y
        if full:
            self.sy = torch.roll(self.sy, shifts=(-1, -1), dims=(1, 2))
            self.yy = torch.roll(self.yy, shifts=(-1, -1), dims=(1, 2))
            self.valid = torch.roll(self.valid, shifts=-1, dims=1)
        last, size = self.size - 1, self.size
        self.sy[:, :size, last] = products[:, :size]
        self.yy[:, :size, last] = products[:, size:]
        self.yy[:, last, :size] = products[:, size:]
        self.valid[:, last] = good
        if all_good:
            self.gamma = sy / yy
            self.usable[:] = True
            # a rejected pair can only have left the window
            self.all_valid = True if self.all_valid else bool(self.valid[:, :size].all())
        else:
            self.gamma = torch.where(good, sy / yy.clamp(min=1e-300), self.gamma)
            self.usable |= good
            self.all_valid = bool(self.valid[:, :size].all())

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """``-H g`` in the compact form of Byrd, Nocedal and Schnabel: ``H g = gamma g + S u - gamma Y p`` with
        ``p = R^-1 S'g``, ``u = R^-T ((D + gamma Y'Y) p - gamma Y'g)``, ``R`` the upper triangle of ``S'Y`` and
        ``D`` its diagonal. A rejected (zero) pair gets ``R_ii = 1`` and drops out exactly."""
        size = self.size
        products = torch.bmm(self.pairs, grad.unsqueeze(-1))[:, self.index]  # (r, 2 size, 1)
        upper = torch.triu(self.sy[:, :size, :size])
        diag = torch.diagonal(upper, dim1=1, dim2=2).unsqueeze(-1)
        if not self.all_valid:
            upper = upper + torch.diag_embed((~self.valid[:, :size]).to(F64))
        gamma = self.gamma.view(-1, 1, 1)
        p = torch.linalg.solve_triangular(upper, products[:, :size], upper=True)
        rhs = torch.baddbmm(products[:, size:], self.yy[:, :size, :size], p, beta=-1).mul_(gamma).addcmul_(diag, p)
        u = torch.linalg.solve_triangular(upper.transpose(1, 2), rhs, upper=False)
        weights = torch.zeros(grad.shape[0], 2 * self.m, 1, dtype=F64)
        weights[:, self.index] = torch.cat([u, p.mul_(-gamma)], 1)
        hg = torch.bmm(self.pairs.transpose(1, 2), weights).squeeze(-1)
        return hg.addcmul_(grad, self.gamma.unsqueeze(1)).neg_()


def fit_logreg(x: torch.Tensor, y: torch.Tensor, classes: int, l2, binary: bool | None = None,
               max_iter: int = 100, gtol: float = 1e-4, history: int = 10, c1: float = 1e-3, c2: float = 0.9,
               max_evals: int = 20, preconditioner: Preconditioner | None = None,
               dtype: torch.dtype = torch.float32) -> LogRegFit:
    """One problem per entry of ``l2`` on ``x (N, D)`` and ``y (N,)`` (class ids below ``classes``); ``binary`` None
    means one logit when there are two classes, as scikit-learn. With a ``preconditioner`` the optimizer works on
    ``u`` with ``theta = P u`` (a change of variables: the problem and its solution are the same, the path is not).
    ``dtype`` is that of the products with the features and of the scores; the optimizer's own vectors are
    float64."""
    binary = classes == 2 if binary is None else binary
    data = _Data(x, y, classes, binary, dtype)
    l2_all = torch.as_tensor(l2, dtype=F64).reshape(-1)
    r_all, k, d = len(l2_all), data.k, data.d
    p = k * (d + 1)
    mask = torch.ones(k, d + 1, dtype=F64)
    mask[:, -1] = 0
    theta_all = torch.zeros(r_all, p, dtype=F64)
    loss_all = torch.zeros(r_all, dtype=F64)
    n_iter = torch.zeros(r_all, dtype=torch.long)
    converged = torch.zeros(r_all, dtype=torch.bool)
    eps = torch.finfo(F64).eps

    # the running problems, by position in `active`
    active = torch.arange(r_all)
    pen = l2_all.view(-1, 1) * mask.view(1, -1)  # l2 per parameter, (r, P)
    precond = preconditioner
    if precond is not None:
        precond = Preconditioner(torch.as_tensor(precond.scale, dtype=F64).expand(r_all, p).clone(),
                                 None if precond.rotation is None else precond.rotation.to(F64))
        pen = pen * precond.scale * precond.scale
    theta = theta_all.clone()  # u when preconditioned (zero either way)
    scores = data.scores(theta)
    loss, residual = data.loss(scores)
    grad = data.gradient(residual)
    if precond is not None:
        grad = precond.adjoint(grad, d)
    memory = _History(r_all, p, history)

    def finish(keep: torch.Tensor) -> None:
        nonlocal active, pen, precond, theta, scores, loss, grad
        gone = ~keep
        theta_all[active[gone]] = theta[gone] if precond is None else precond.select(gone).forward(theta[gone], d)
        loss_all[active[gone]] = loss[gone]
        active, pen, theta, scores, loss, grad = active[keep], pen[keep], theta[keep], scores[keep], loss[keep], grad[keep]
        if precond is not None:
            precond = precond.select(keep)
        memory.select(keep)

    met = grad.abs().amax(1) <= gtol
    converged[met] = True
    if bool(met.any()):
        finish(~met)
    for _ in range(max_iter):
        a = len(active)
        if a == 0:
            break
        step = None
        if memory.count:
            direction = memory.direction(grad)
            slope = torch.linalg.vecdot(grad, direction)
            restart = (slope >= 0) | ~memory.usable
            if bool(restart.any()):
                direction = torch.where(restart.unsqueeze(1), grad.neg(), direction)
                norm2 = torch.linalg.vecdot(grad, grad)
                slope = torch.where(restart, -norm2, slope)
                step = torch.where(restart, norm2.rsqrt(), torch.ones_like(norm2))
        else:  # steepest descent with a step of length 1 (scipy's first iteration)
            direction = grad.neg()
            slope = -torch.linalg.vecdot(grad, grad)
            step = slope.neg().rsqrt()
        # along the line: f(t) = data_loss(scores + t X d) + q0 + q1 t + q2 t^2
        theta_pen = theta * pen
        pen_dir = direction * pen
        q0 = 0.5 * torch.linalg.vecdot(theta, theta_pen)
        q1 = torch.linalg.vecdot(theta, pen_dir)
        q2 = 0.5 * torch.linalg.vecdot(direction, pen_dir)
        scores_dir = data.scores(direction if precond is None else precond.forward(direction, d))
        if step is None:
            trial = scores + scores_dir
        else:
            trial = torch.addcmul(scores, step.to(dtype).view(-1, 1, 1), scores_dir)
        data_loss, new_residual = data.loss(trial)
        t1 = 1 if step is None else step
        new_loss = data_loss + q0 + t1 * (q1 + t1 * q2)
        g_t = torch.linalg.vecdot(new_residual.view(a, -1), scores_dir.view(a, -1)).to(F64) / data.unit \
            + q1 + 2 * t1 * q2
        wolfe = (new_loss <= loss + c1 * t1 * slope) & (new_loss < loss) & (g_t.abs() <= -c2 * slope)
        new_scores = trial
        if bool(wolfe.all()):  # the usual case: every problem takes its first trial
            all_moved, moved = True, wolfe
            accepted = step
        else:
            all_moved = False
            accepted = torch.ones(a, dtype=F64) if step is None else step.clone()
            moved = wolfe.clone()
            new_scores, new_residual, new_loss = new_scores.clone(), new_residual.clone(), new_loss.clone()
            for i in (~wolfe).nonzero().squeeze(1).tolist():
                def evaluate(t, i=i):
                    trial_i = torch.add(scores[i:i + 1], scores_dir[i:i + 1], alpha=t)
                    loss_i, residual_i = data.loss(trial_i)
                    f = float(loss_i) + float(q0[i]) + t * (float(q1[i]) + t * float(q2[i]))
                    g = float(torch.linalg.vecdot(residual_i.view(-1), scores_dir[i].view(-1))) / data.unit \
                        + float(q1[i]) + 2 * t * float(q2[i])
                    return f, g, (trial_i, residual_i, f)

                first_trial = (float(new_loss[i]), float(g_t[i]),
                               (trial[i:i + 1], new_residual[i:i + 1], float(new_loss[i])))
                found = _line_search(evaluate, float(loss[i]), float(slope[i]), float(accepted[i]), first_trial,
                                     c1, c2, max_evals)
                if found is None:
                    accepted[i], moved[i] = 0.0, False
                    new_scores[i], new_loss[i] = scores[i], loss[i]
                else:
                    accepted[i], moved[i] = found[0], True
                    new_scores[i], new_residual[i], new_loss[i] = found[1][0][0], found[1][1][0], found[1][2]
        n_iter[active] += 1
        step_vec = direction if accepted is None else direction.mul_(accepted.unsqueeze(1))
        theta = theta + step_vec
        new_grad = data.gradient(new_residual)
        if precond is not None:
            new_grad = precond.adjoint(new_grad, d)
        new_grad.addcmul_(theta, pen)
        y_vec = new_grad - grad
        sy, yy = torch.linalg.vecdot(step_vec, y_vec), torch.linalg.vecdot(y_vec, y_vec)
        good = sy > eps * yy
        if not all_moved:
            good &= moved
        all_good = bool(good.all())
        memory.push(step_vec, y_vec, good, sy, yy, all_good)
        flat = (loss - new_loss) <= 64 * eps * torch.maximum(torch.maximum(loss.abs(), new_loss.abs()),
                                                             torch.ones_like(loss))
        scores, loss, grad = new_scores, new_loss, new_grad
        met = grad.abs().amax(1) <= gtol
        stop = met | flat
        if not all_moved:
            stop |= ~moved
        if bool(stop.any()):
            converged[active[met]] = True
            finish(~stop)
    if len(active):
        finish(torch.zeros(len(active), dtype=torch.bool))
    params = theta_all.view(r_all, k, d + 1)
    return LogRegFit(params[..., :-1].to(dtype).contiguous(), params[..., -1].to(dtype).contiguous(), n_iter,
                     converged, loss_all, binary)
