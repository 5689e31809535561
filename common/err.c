#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *sfl_strerror(int err)
{
    switch (err) {
    case SFL_OK: return "success";
    case SFL_ENOMEM: return "out of memory";
    case SFL_EINVAL: return "invalid argument";
    case SFL_EIO: return "input/output error";
    case SFL_EFORMAT: return "malformed data";
    case SFL_ECRYPTO: return "cryptographic check failed";
    case SFL_ETOOBIG: return "length over limit";
    case SFL_ECLOSED: return "connection closed";
    case SFL_EPROTO: return "protocol violation";
    case SFL_EAUTH: return "not authorised";
    case SFL_ETIMEOUT: return "timed out";
    case SFL_ESTALE: return "stale round";
    case SFL_EREFUSED: return "refused by peer";
    case SFL_EPERM: return "unsafe file permissions";
    case SFL_ERANGE: return "value out of range";
    case SFL_EBUSY: return "peer busy";
    }
    return "unknown error";
}

int sfl_fail(char *errbuf, size_t errlen, int code, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
