/* seedfl error codes: every function returns 0 or one of these (negative). */
#ifndef SFL_ERR_H
#define SFL_ERR_H

enum sfl_err {
    SFL_OK = 0,
    SFL_ENOMEM = -1,   /* allocation failed */
    SFL_EINVAL = -2,   /* bad argument or option */
    SFL_EIO = -3,      /* file or socket I/O failed */
    SFL_EFORMAT = -4,  /* malformed file or message */
    SFL_ECRYPTO = -5,  /* authentication/decryption/key agreement failed */
    SFL_ETOOBIG = -6,  /* length over a limit */
    SFL_ECLOSED = -7,  /* peer closed the connection */
    SFL_EPROTO = -8,   /* protocol violation (unexpected message, bad state) */
    SFL_EAUTH = -9,    /* peer not authorised (allow-list, pinned key) */
    SFL_ETIMEOUT = -10,/* a deadline passed */
    SFL_ESTALE = -11,  /* message for another round */
    SFL_EREFUSED = -12,/* peer refused us */
    SFL_EPERM = -13,   /* file permissions unsafe */
    SFL_ERANGE = -14,  /* value out of range */
    SFL_EBUSY = -15,   /* peer cannot take us now; try again later */
};

#include <stddef.h>

/* Never NULL; a static string. */
const char *sfl_strerror(int err);

/* Formats a message into errbuf (when errbuf and errlen are non-zero) and
 * returns code, so that a failing path reads `return sfl_fail(...)`. */
int sfl_fail(char *errbuf, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
