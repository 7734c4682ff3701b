/*
 * proc_maps.h - how many memory mappings the process has, from
 * /proc/self/maps: the tests that check stacks do not split mappings, and
 * that repeated loops leave none behind, count them.
 *
 * Include after <cmocka.h>.
 */
#ifndef PROC_MAPS_H
#define PROC_MAPS_H

#include <stddef.h>
#include <stdio.h>

static size_t count_mappings(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    size_t lines = 0;
    int c;

    assert_non_null(maps);
    while ((c = fgetc(maps)) != EOF)
        lines += c == '\n';
    fclose(maps);
    return lines;
}

#endif
