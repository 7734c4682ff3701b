/*
 * version.c - the version of the library that runs, which a program
 * compares with the FIBER_VERSION of the headers it was compiled with to
 * learn that the dynamic linker gave it the libfiber it was built for.
 */
#include "config.h"

#include "fiber.h"

const char *fiber_version(void)
{
    return FIBER_VERSION;
}

int fiber_version_number(void)
{
    return FIBER_VERSION_NUMBER;
}
